"""fungrad.numpy.fft and lax.fft against jax: values, shapes and dtypes (eager and under
jit), JVP and VJP against jax and finite differences, vmap against jax.vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad.test_util import check_grads
from harness import GRAD_TOL, assert_same, compare, rand, to_fg, to_jax

RNG = np.random.default_rng(0)


def crand(shape, dtype=np.complex64):
    return (rand(RNG, shape, np.float32) + 1j * rand(RNG, shape, np.float32)).astype(dtype)


# (function name, kwargs, input: "r" real float32, "c" complex64, "i" int32, shape)
OPS = [
    ("fft", {}, "c", (3, 8)),
    ("fft", {"n": 5, "axis": 0}, "r", (4, 6)),
    ("fft", {"norm": "ortho"}, "i", (6,)),
    ("ifft", {"norm": "forward"}, "c", (2, 7)),
    ("rfft", {}, "r", (3, 8)),
    ("rfft", {"n": 9, "norm": "ortho"}, "r", (2, 7)),
    ("rfft", {"axis": 0}, "r", (5, 3)),
    ("irfft", {}, "c", (3, 5)),
    ("irfft", {"n": 7, "norm": "forward"}, "c", (2, 4)),
    ("fft2", {}, "r", (2, 4, 6)),
    ("ifft2", {"s": (3, 5), "axes": (0, 2)}, "c", (4, 2, 4)),
    ("rfft2", {"norm": "ortho"}, "r", (4, 6)),
    ("irfft2", {"s": (4, 5)}, "c", (2, 3, 4)),
    ("fftn", {}, "c", (2, 3, 4)),
    ("ifftn", {"axes": (1,)}, "c", (3, 5)),
    ("rfftn", {"s": (3, 4)}, "r", (2, 3, 4)),
    ("irfftn", {}, "c", (2, 3, 4)),
    ("irfftn", {"axes": (0, 1), "norm": "ortho"}, "c", (4, 3, 2)),
    ("hfft", {}, "c", (3, 5)),
    ("hfft", {"n": 6}, "r", (4,)),
    ("ihfft", {"n": 6}, "r", (2, 5)),
    ("hfft", {"norm": "ortho"}, "c", (2, 4)),
    ("hfft", {"n": 5, "norm": "forward"}, "r", (4,)),
    ("ihfft", {"norm": "ortho"}, "r", (3, 6)),
    ("ihfft", {"n": 5, "norm": "forward"}, "r", (4,)),
    ("fftshift", {}, "r", (3, 4)),
    ("ifftshift", {"axes": 0}, "c", (5, 2)),
    ("fftshift", {"axes": (0, 2)}, "r", (3, 2, 5)),
]
IDS = [f"{n}-{'-'.join(f'{k}{v}' for k, v in kw.items())}-{kind}{shape}"
       for n, kw, kind, shape in OPS]


def _input(kind, shape):
    if kind == "c":
        return crand(shape)
    return rand(RNG, shape, np.int32 if kind == "i" else np.float32)


def _fns(name, kw):
    return (lambda x: getattr(fnp.fft, name)(x, **kw)), (lambda x: getattr(jnp.fft, name)(x, **kw))


@pytest.mark.parametrize("name,kw,kind,shape", OPS, ids=IDS)
def test_values_eager_and_jit(name, kw, kind, shape):
    fg, ref = _fns(name, kw)
    x = _input(kind, shape)
    compare(fg, ref, x, jit_ref=True)
    compare(fungrad.jit(fg), ref, x, jit_ref=True)


@pytest.mark.parametrize("name,kw,kind,shape", [o for o in OPS if o[2] != "i"],
                         ids=[i for i, o in zip(IDS, OPS) if o[2] != "i"])
def test_derivatives_against_jax_and_finite_differences(name, kw, kind, shape):
    fg, ref = _fns(name, kw)
    x = _input(kind, shape)
    t = _input(kind, shape)
    fg_y, fg_t = fungrad.jvp(fg, (to_fg(x),), (to_fg(t),))
    jx_y, jx_t = jax.jvp(ref, (to_jax(x),), (to_jax(t),))
    assert_same(fg_t, jx_t, GRAD_TOL, check_weak=False)
    ct = _input("c" if np.iscomplexobj(jx_y) else "r", jx_y.shape)
    fg_ct = fungrad.vjp(fg, to_fg(x))[1](to_fg(ct))
    jx_ct = jax.vjp(ref, to_jax(x))[1](to_jax(ct))
    assert_same(fg_ct, jx_ct, GRAD_TOL, check_weak=False)
    order = 2 if (name, kw) in [("irfft", {}), ("rfft", {}), ("fftn", {})] else 1
    check_grads(fg, (x.astype(np.complex128 if kind == "c" else np.float64),), order=order)


def test_grad_of_a_real_loss_and_hessian_under_jit():
    w = rand(RNG, (5,), np.float32)

    def loss(lib):
        return lambda x: lib.sum(lib.abs(lib.fft.rfft(x * w, n=8)) ** 2)
    x = rand(RNG, (3, 8), np.float32)
    compare(fungrad.jit(fungrad.grad(loss(fnp))), jax.grad(loss(jnp)), x[0, :5], table=GRAD_TOL,
            jit_ref=True,
            check_weak=False)
    compare(fungrad.hessian(loss(fnp)), jax.hessian(loss(jnp)), x[0, :5], table=GRAD_TOL,
            jit_ref=True, check_weak=False)


@pytest.mark.parametrize("name,kw,kind,shape", OPS[::3], ids=IDS[::3])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap(name, kw, kind, shape, axis):
    fg, ref = _fns(name, kw)
    xs = np.stack([_input(kind, shape) for _ in range(3)], axis=axis)
    assert_same(fungrad.vmap(fg, in_axes=axis)(to_fg(xs)), jax.vmap(ref, in_axes=axis)(to_jax(xs)))


@pytest.mark.parametrize("fft_type,lengths,kind,shape", [
    ("fft", (4,), "c", (3, 4)), ("ifft", (2, 4), "c", (2, 4)), ("rfft", (3, 4), "r", (2, 3, 4)),
    ("irfft", (3, 6), "c", (3, 4)), ("irfft", (5,), "c", (2, 3)), ("FFT", (), "r", (3,)),
    ("rfft", (4,), "i", (4,))])
def test_lax_fft_primitive(fft_type, lengths, kind, shape):
    x = _input(kind, shape)
    fg = lambda v: lax.fft(v, fft_type, lengths)  # noqa: E731
    ref = lambda v: jax.lax.fft(v, fft_type, lengths)  # noqa: E731
    compare(fg, ref, x)
    if kind != "i":
        y = ref(to_jax(x))
        ct = _input("c" if np.iscomplexobj(y) else "r", y.shape)
        assert_same(fungrad.vjp(fg, to_fg(x))[1](to_fg(ct)), jax.vjp(ref, to_jax(x))[1](to_jax(ct)),
                    GRAD_TOL, check_weak=False)
        xs = np.stack([x, _input(kind, shape)], 0)
        assert_same(fungrad.vmap(fg)(to_fg(xs)), jax.vmap(ref)(to_jax(xs)))
    assert lax.FftType.IRFFT == jax.lax.FftType.IRFFT.value


def test_jaxpr_has_one_fft_equation():
    jaxpr = fungrad.make_jaxpr(lambda x: fnp.fft.rfft2(x))(np.ones((2, 4), np.float32))
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["fft"]
    assert jaxpr.jaxpr.eqns[0].params == {"fft_type": lax.FftType.RFFT, "fft_lengths": (2, 4)}


@pytest.mark.parametrize("call,exc", [
    (lambda: fnp.fft.fft(np.ones(4), axis=(0,)), ValueError),
    (lambda: fnp.fft.fftn(np.ones((2, 2)), axes=(0, 0)), ValueError),
    (lambda: fnp.fft.fftn(np.ones((2, 2)), s=(2,), axes=(0, 1)), ValueError),
    (lambda: fnp.fft.fft(np.ones(4), n=0), ValueError),
    (lambda: fnp.fft.fft(np.ones(4), norm="bad"), ValueError),
    (lambda: fnp.fft.fft2(np.ones((2, 2)), axes=(0,)), ValueError),
    (lambda: fnp.fft.rfft(np.ones(4, np.complex64)), ValueError),
    (lambda: fnp.fft.fftfreq([4]), ValueError),
    (lambda: lax.fft(np.ones(4, np.complex64), "dft", (4,)), (TypeError, ValueError)),
])
def test_errors_match_jax_classes(call, exc):
    with pytest.raises(exc):
        call()
