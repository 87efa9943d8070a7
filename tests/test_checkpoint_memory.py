"""Memory behaviour of reverse mode, measured with ``tracemalloc`` (NumPy reports its
buffers to it): ``checkpoint`` per layer lowers the peak of ``grad`` of a deep MLP,
and the backward pass frees each residual as soon as it has used it; under ``jit``
too."""
import tracemalloc

import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from harness import GRAD_TOL, assert_same, peak_traced_bytes

DEPTH, WIDTH, BATCH = 12, 128, 128
ACTIVATION = BATCH * WIDTH * 4  # bytes of one float32 activation


def _layer(W, h):
    z = lax.dot(h, W)
    return fnp.sin(fnp.tanh(z) * 2.0) * fnp.cos(z)  # several residuals per layer


def _mlp_loss(Ws, x, wrap):
    layer = wrap(_layer)
    h = x
    for W in Ws:
        h = layer(W, h)
    return fnp.sum(h * h)


def _peak_grad_bytes(Ws, x, wrap):
    """Peak bytes allocated above the baseline while computing the gradient."""
    return peak_traced_bytes(lambda: fungrad.grad(_mlp_loss)(Ws, x, wrap))


@pytest.fixture(scope="module")
def peaks():
    rng = np.random.default_rng(0)
    Ws = [fnp.asarray(rng.normal(0, WIDTH ** -0.5, (WIDTH, WIDTH)).astype(np.float32))
          for _ in range(DEPTH)]
    x = fnp.asarray(rng.normal(size=(BATCH, WIDTH)).astype(np.float32))
    policies = fungrad.checkpoint_policies
    wraps = {"plain": lambda f: f, "remat": fungrad.checkpoint,
             "save_all": lambda f: fungrad.checkpoint(f, policy=policies.everything_saveable),
             "dots": lambda f: fungrad.checkpoint(f, policy=policies.dots_saveable)}
    return {name: _peak_grad_bytes(Ws, x, wrap) for name, wrap in wraps.items()}


def test_checkpoint_per_layer_lowers_peak_memory(peaks):
    (peak_plain, g_plain), (peak_remat, g_remat) = peaks["plain"], peaks["remat"]
    assert_same(g_remat, [np.asarray(g) for g in g_plain], GRAD_TOL, check_weak=False)
    # Plain reverse mode keeps several activations per layer alive; checkpointing keeps
    # one (the layer input) plus the activations of the layer being recomputed.
    assert peak_plain > 4 * DEPTH * ACTIVATION
    assert peak_remat < 0.5 * peak_plain, (peak_remat, peak_plain)


def test_checkpoint_lowers_peak_memory_under_jit():
    """Compiled, the recomputation must not be merged with the forward pass (CSE), or the
    residuals stay alive as without ``checkpoint``. The first call allocates the
    executable's buffers, so its peak is the compiled step's footprint."""
    rng = np.random.default_rng(1)
    Ws = [fnp.asarray(rng.normal(0, WIDTH ** -0.5, (WIDTH, WIDTH)).astype(np.float32))
          for _ in range(DEPTH)]
    x = fnp.asarray(rng.normal(size=(BATCH, WIDTH)).astype(np.float32))
    results = {}
    for name, wrap in {"plain": lambda f: f, "remat": fungrad.checkpoint}.items():
        step = fungrad.jit(fungrad.grad(_mlp_loss), static_argnums=2)
        results[name] = peak_traced_bytes(lambda: step(Ws, x, wrap))
    (peak_plain, g_plain), (peak_remat, g_remat) = results["plain"], results["remat"]
    assert_same(g_remat, [np.asarray(g) for g in g_plain], GRAD_TOL, check_weak=False)
    assert peak_plain > 4 * DEPTH * ACTIVATION
    assert peak_remat < 0.6 * peak_plain, (peak_remat / ACTIVATION, peak_plain / ACTIVATION)


def test_checkpoint_policies_choose_what_is_saved(peaks):
    peak_plain, peak_remat = peaks["plain"][0], peaks["remat"][0]
    peak_all, g_all = peaks["save_all"]
    peak_dots, g_dots = peaks["dots"]
    for g in (g_all, g_dots):
        assert_same(g, [np.asarray(v) for v in peaks["plain"][1]], GRAD_TOL, check_weak=False)
    assert peak_all > 0.8 * peak_plain  # as if not checkpointed
    # dots_saveable keeps one matmul output per layer on top of the layer inputs.
    extra = peak_dots - peak_remat
    assert 0.7 * DEPTH * ACTIVATION < extra < 1.5 * DEPTH * ACTIVATION, extra / ACTIVATION


def _probe(log, tag):
    """Identity whose backward pass records the bytes allocated when it runs."""
    @fungrad.custom_vjp
    def probe(x):
        return x

    def bwd(_, g):
        log[tag] = tracemalloc.get_traced_memory()[0]
        return (g,)
    probe.defvjp(lambda x: (x, None), bwd)
    return probe


def test_backward_pass_releases_residuals_progressively():
    n_ops, size = 24, 1 << 18  # 24 residuals of 1 MiB each
    log = {}
    first, last = _probe(log, "first"), _probe(log, "last")

    def chain(x):
        x = first(x)
        for _ in range(n_ops):
            x = fnp.sin(x)  # residual: cos(x) for every op
        return fnp.sum(last(x))

    x = fnp.asarray(np.linspace(0, 1, size, dtype=np.float32))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fungrad.grad(chain)(x)
    finally:
        tracemalloc.stop()
    residuals = n_ops * size * 4
    # The probe at the end of the chain is transposed first: every residual is alive.
    assert log["last"] - base > 0.9 * residuals
    # The probe at the start is transposed last: by then the residuals are gone.
    assert log["first"] - base < 0.2 * residuals, (log["first"] - base, residuals)
