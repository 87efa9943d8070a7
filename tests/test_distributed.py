"""fungrad.distributed: collectives over the process axis, DataParallel, faults.

Two kinds of tests. In this process (one process, no MPI started): the rules of the
collective primitives, single-process semantics, errors, data sharding, checkpoints.
On two processes (``tests/distributed_scripts/``, launched as subprocesses), once under
``mpiexec -n 2`` and once started by ``fungrad.distributed.spawn`` (shared memory, no MPI):
the collectives, their gradients and the data-parallel training, compared here with
one-process references (JAX's ``vmap`` with a named axis for the collectives, one process
on the concatenated batch for training), and the fault behaviour (a killed, stalled or
failing process ends the job within a bounded time).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
import weakref

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import distributed as dist
from fungrad import lax, optim, random
from fungrad.distributed import comm as comm_lib
from fungrad.distributed import runtime

from harness import GRAD_TOL, TOL
from distributed_scripts import common

SCRIPTS = os.path.join(os.path.dirname(__file__), "distributed_scripts")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(comm_lib.MPI is None or MPIEXEC is None,
                               reason="mpi4py or mpiexec is not installed "
                                      "(pip install -e '.[distributed]')")
F32 = TOL[np.dtype(np.float32)]
F32_GRAD = GRAD_TOL[np.dtype(np.float32)]


# --------------------------------------------------------------------------- one process

def test_a_single_process_is_a_job_of_one():
    assert not dist.is_initialized()
    assert (dist.process_index(), dist.process_count()) == (0, 1)
    assert dist.local_devices() == fungrad.devices()
    x = jnp.arange(6.0).reshape(2, 3)
    with dist.process_axis("dp"):
        np.testing.assert_array_equal(dist.psum(x, "dp"), x)
        np.testing.assert_array_equal(dist.pmean(x, "dp"), x)
        np.testing.assert_array_equal(dist.pmax(x, "dp"), x)
        np.testing.assert_array_equal(dist.broadcast(x, "dp"), x)
        np.testing.assert_array_equal(dist.all_gather(x, "dp"), x[None])
        np.testing.assert_array_equal(dist.all_gather(x, "dp", axis=1, tiled=True), x)
        assert int(dist.psum(1, "dp")) == 1 and dist.axis_size("dp") == 1
        assert int(dist.axis_index("dp")) == 0


def test_unbound_axis_is_a_name_error_as_in_jax():
    with pytest.raises(NameError, match="unbound axis name: dp"):
        jax.lax.psum(1.0, "dp")
    for fn in (dist.psum, dist.pmean, dist.pmax, dist.pmin, dist.all_gather, dist.broadcast):
        with pytest.raises(NameError, match="unbound axis name: dp"):
            fn(jnp.ones(3), "dp")
    with dist.process_axis("dp"), pytest.raises(NameError, match=r"unbound axis name: i.*\['dp'\]"):
        dist.psum(jnp.ones(3), "i")


def test_a_compiled_collective_needs_its_axis_bound_when_it_runs():
    f = fungrad.jit(lambda x: dist.psum(x, "dp"))
    with dist.process_axis("dp"):
        f(jnp.ones(3))
    with pytest.raises(NameError, match="process axis 'dp' is not bound"):
        f(jnp.ones(3))


def test_one_process_axis_at_a_time():
    with dist.process_axis("dp"):
        with dist.process_axis("dp"):  # the same name nests
            dist.psum(1.0, "dp")
        with pytest.raises(ValueError, match="already bound to 'dp'"), dist.process_axis("other"):
            pass
        dist.psum(1.0, "dp")


def test_vmap_axes_and_the_process_axis_in_one_call():
    x = np.arange(12.0, dtype=np.float32).reshape(4, 3)

    def fg(v):
        return (dist.psum(v, ("i", "dp")) + dist.pmax(v, "i") + dist.axis_index("i")
                + dist.axis_size(("i", "dp"))
                + dist.broadcast(v, "i", root=2) * dist.all_gather(v, "i")[1])

    def ref(v):
        return (jax.lax.psum(v, "i") + jax.lax.pmax(v, "i") + jax.lax.axis_index("i") + 4
                + jax.lax.all_gather(v, "i")[2] * jax.lax.all_gather(v, "i")[1])
    with dist.process_axis("dp"):
        got = fungrad.vmap(fg, axis_name="i")(x)
        inner = fungrad.vmap(lambda v: dist.psum(v, "dp"), axis_name="dp")(x)  # the vmap name wins
    np.testing.assert_allclose(got, jax.vmap(ref, axis_name="i")(x), *F32)
    np.testing.assert_allclose(inner, np.broadcast_to(x.sum(0), x.shape), *F32)


def test_psum_transposes_to_psum():
    x = jnp.arange(3.0)
    with dist.process_axis("dp"):
        jaxpr = fungrad.make_jaxpr(fungrad.grad(lambda v: dist.psum(v * v, "dp").sum()))(x)
        grad = fungrad.grad(lambda v: dist.psum(v * v, "dp").sum())(x)
    prims = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    assert prims.count("process_psum") == 2, jaxpr   # the forward psum and its transpose
    np.testing.assert_array_equal(grad, 2 * np.arange(3.0))


def test_jit_keeps_every_collective_in_program_order():
    """Collectives are effectful: never folded, merged or dropped, so every process runs the same
    sequence."""
    def f(x):
        a, b = dist.psum(x, "dp"), dist.psum(x, "dp")   # identical: CSE must not merge them
        dist.pmax(x, "dp")                                # unused: DCE must not drop it
        return a + b + dist.psum(jnp.float32(2.0), "dp")  # constant: folding must not run it
    with dist.process_axis("dp"):
        text = fungrad.jit(f).lower(jnp.ones(3)).as_text()
    assert text.count("process_psum") == 3 and text.count("process_pmax") == 1, text


def test_fused_pmean_is_one_collective_per_dtype():
    tree = {"a": jnp.ones((2, 3)), "b": jnp.ones(4), "c": jnp.float32(1.0),
            "h": jnp.ones(2, jnp.float16), "z": np.zeros(3, jax.dtypes.float0)}
    with dist.process_axis("dp"):
        jaxpr = fungrad.make_jaxpr(dist.fused_pmean)(tree)
        out = dist.fused_pmean(tree)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["process_fused_pmean"] * 2, jaxpr
    for k in "abch":
        np.testing.assert_array_equal(out[k], tree[k])
        assert out[k].dtype == tree[k].dtype and out[k].shape == tree[k].shape
    assert out["z"].dtype == jax.dtypes.float0
    with dist.process_axis("dp"), \
            pytest.raises(TypeError, match="fused_pmean: leaf 0 has dtype int32"):
        dist.fused_pmean([jnp.ones(2, jnp.int32)])


class _Replicas:
    """A communicator of ``size`` processes that all hold this process's values: an all-reduce
    (sum) multiplies by ``size``."""
    rank = 0

    def __init__(self, size):
        self.size = size

    def allreduce_into(self, send, out, op):
        np.multiply(send, send.dtype.type(self.size), out=out)


@pytest.mark.parametrize("size", [3, 4])
def test_fused_pmean_divides_the_sum_as_pmean_does(monkeypatch, size):
    """Over n processes the fused mean is the sum divided by n, bit for bit as lax.div rounds
    it (a power of two multiplies by 1 / n, which rounds the same); float16 is summed in
    float32; the results keep their shapes, dtypes and weak types."""
    monkeypatch.setattr(runtime, "_world", runtime.ProcessGroup(_Replicas(size)))
    rng = np.random.default_rng(0)
    tree = {"w": rng.standard_normal((3, 5)).astype(np.float32),
            "b": rng.standard_normal(5).astype(np.float32),
            "loss": np.float32(0.7), "h": rng.standard_normal(4).astype(np.float16)}
    with dist.process_axis("dp"):
        eager = dist.fused_pmean(tree)
        compiled = fungrad.jit(dist.fused_pmean)(tree)
        weak = dist.fused_pmean(jnp.asarray(2.0) * 1.5)   # weak-typed leaf
    for got in (eager, compiled):
        for k in ("w", "b", "loss"):
            want = lax.div(jnp.asarray(tree[k] * np.float32(size)), jnp.float32(size))
            np.testing.assert_array_equal(got[k], want, err_msg=k)
            assert got[k].dtype == np.float32 and got[k].shape == np.shape(tree[k])
        summed = (tree["h"].astype(np.float32) * np.float32(size)).astype(np.float16)
        np.testing.assert_array_equal(got["h"], summed / np.float16(size))
        assert got["h"].dtype == np.float16
    assert not eager["w"].weak_type and weak.weak_type


def test_fused_pmean_rules_match_pmean():
    """JVP, transpose (the mean is its own transpose) and vmap of process_fused_pmean, against
    the unfused pmean of each leaf; over a vmap axis name fused_pmean is pmean (JAX's)."""
    x = (jnp.arange(6.0).reshape(2, 3), jnp.float32(2.0))
    f_fused = lambda t: sum(jnp.sum(jnp.sin(v)) for v in dist.fused_pmean(t))
    f_leaf = lambda t: sum(jnp.sum(jnp.sin(v)) for v in dist.pmean(t, "dp"))
    with dist.process_axis("dp"):
        np.testing.assert_array_equal(fungrad.grad(f_fused)(x)[0], fungrad.grad(f_leaf)(x)[0])
        _, t = fungrad.jvp(dist.fused_pmean, (x,), (x,))
        np.testing.assert_array_equal(t[0], x[0])
        batched = fungrad.vmap(lambda r: dist.fused_pmean({"r": r, "c": x[1]}))(x[0])
        jaxpr = fungrad.make_jaxpr(fungrad.grad(f_fused))(x)
    np.testing.assert_array_equal(batched["r"], x[0])
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns].count("process_fused_pmean") == 2, jaxpr
    rows = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(
        fungrad.vmap(lambda r: dist.fused_pmean([r], "i")[0], axis_name="i")(rows),
        jax.vmap(lambda r: jax.lax.pmean(r, "i"), axis_name="i")(rows), *F32)


def test_reusable_buffers_are_handed_out_again_only_once_dropped():
    big = comm_lib.RECYCLE_MIN_BYTES // 4   # float32 elements
    a = comm_lib.reusable_buffer(np, big, np.float32)
    first, view = weakref.ref(a), a[:3].reshape(3, 1)
    del a
    b = comm_lib.reusable_buffer(np, big, np.float32)
    assert b is not first() and first() is not None   # the view still holds the first buffer
    del view, b
    assert comm_lib.reusable_buffer(np, big, np.float32) is first()
    small = comm_lib.reusable_buffer(np, 4, np.float32)
    assert small.shape == (4,) and small.dtype == np.float32


def test_broadcast_root_is_checked():
    with dist.process_axis("dp"):
        with pytest.raises(ValueError,
                           match="broadcast: root 1 is out of range for axis 'dp' of size 1"):
            dist.broadcast(jnp.ones(2), "dp", root=1)
        with pytest.raises(TypeError, match="broadcast: root must be an integer"):
            dist.broadcast(jnp.ones(2), "dp", root=0.0)


def test_initialize_errors(monkeypatch):
    for var in runtime.LAUNCHER_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(dist.NotUnderMPIError, match="mpiexec -n N python script.py"):
        dist.initialize()
    with pytest.raises(ValueError, match="backend must be 'mpi', 'nccl' or None, got 'gloo'"):
        dist.initialize(backend="gloo")
    if not any(d.platform == "gpu" for d in fungrad.devices()):
        monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
        with pytest.raises(RuntimeError, match="backend='nccl'.*needs CuPy and a GPU"):
            dist.initialize(backend="nccl")
    monkeypatch.setattr(comm_lib, "MPI", None)
    with pytest.raises(ImportError, match=r"pip install \"fungrad\[distributed\]\""):
        dist.initialize()
    assert not dist.is_initialized()


class _StuckComm:
    """An mpi4py communicator whose peer never answers."""
    aborted = None

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def Iallreduce(self, send, out, op):
        return types.SimpleNamespace(Test=lambda: False)

    def Abort(self, code):
        _StuckComm.aborted = code
        raise SystemExit(code)


@needs_mpi
def test_a_collective_that_never_completes_times_out():
    comm = comm_lib.MPIComm(_StuckComm(), timeout=0.05, abort_on_timeout=False)
    start = time.monotonic()
    with pytest.raises(dist.CollectiveTimeoutError,
                       match=r"all-reduce \(sum\) of 3 float32 values on process 0 of 2 "
                             r"did not complete within 0.05 s"):
        comm.allreduce(np.ones(3, np.float32), "sum")
    assert time.monotonic() - start < 5 and comm.broken
    aborting = comm_lib.MPIComm(_StuckComm(), timeout=0.05, abort_on_timeout=True)
    with pytest.raises(SystemExit):
        aborting.allreduce(np.ones(3, np.float32), "max")
    assert _StuckComm.aborted == comm_lib.ABORT_CODE
    with pytest.raises(ValueError, match="timeout must be positive"):
        comm_lib.MPIComm(_StuckComm(), timeout=0, abort_on_timeout=True)


def test_shard_and_batch_indices():
    batch = (np.arange(8), np.arange(16).reshape(8, 2))
    halves = [dist.shard(batch, index=i, count=2) for i in range(2)]
    np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), batch[0])
    np.testing.assert_array_equal(halves[1][1], batch[1][4:])
    assert dist.shard(batch) is not batch and np.array_equal(dist.shard(batch)[0], batch[0])
    with pytest.raises(ValueError, match="shard: leading size 8 does not split evenly over 3"):
        dist.shard(batch, index=0, count=3)
    for step in (0, 3, 4, 9):   # 4 global batches per epoch: steps 4 and 9 are in later epochs
        whole = dist.batch_indices(32, 8, step, seed=1, index=0, count=1)
        parts = [dist.batch_indices(32, 8, step, seed=1, index=i, count=n)
                 for n in (2, 4) for i in range(n)]
        np.testing.assert_array_equal(np.concatenate(parts[:2]), whole)
        np.testing.assert_array_equal(np.concatenate(parts[2:]), whole)
    epoch0 = np.concatenate([dist.batch_indices(32, 8, s, seed=1) for s in range(4)])
    np.testing.assert_array_equal(np.sort(epoch0), np.arange(32))   # each example once per epoch
    assert not np.array_equal(dist.batch_indices(32, 8, 0, seed=1),
                              dist.batch_indices(32, 8, 4, seed=1))
    with pytest.raises(ValueError, match="global batch size 6 does not split evenly over 4"):
        dist.batch_indices(32, 6, 0, seed=1, index=0, count=4)


def test_tree_hash_and_replica_check():
    a = {"w": jnp.ones(3), "s": jnp.zeros((), jnp.int32)}
    b = {"w": jnp.asarray(np.nextafter(np.ones(3, np.float32), 2)), "s": jnp.zeros((), jnp.int32)}
    assert dist.tree_hash(a) == dist.tree_hash({"w": jnp.ones(3), "s": jnp.zeros((), jnp.int32)})
    assert dist.tree_hash(a) != dist.tree_hash(b)
    assert dist.tree_hash(jnp.ones(3)) != dist.tree_hash(jnp.ones((3, 1)))
    dist.check_replicas(a)   # one process: identical to itself


def test_rank_key_folds_in_the_process_index():
    key = random.PRNGKey(3)
    with dist.process_axis("dp"):
        got = fungrad.jit(dist.rank_key)(key)
    np.testing.assert_array_equal(random.key_data(got), random.key_data(random.fold_in(key, 0)))


def _plain_training(params, steps):
    """The loop DataParallel replaces: jit(value_and_grad + update) on the global batch."""
    opt = common.optimizer()

    @fungrad.jit
    def step(p, s, batch):
        loss, g = fungrad.value_and_grad(common.loss_fn)(p, batch)
        updates, s = opt.update(g, s, p)
        return optim.apply_updates(p, updates), s, loss
    state, losses = opt.init(params), []
    for i in range(steps):
        params, state, loss = step(params, state, common.global_batch(i))
        losses.append(float(loss))
    return params, losses


def test_data_parallel_on_one_process_is_plain_training(tmp_path):
    dp = dist.DataParallel(common.loss_fn, common.optimizer(), check_every=2)
    state = dp.init(common.init_params(seed=0))
    losses = []
    for i in range(common.STEPS):
        state, loss = dp.step(state, dp.shard(common.global_batch(i)))
        losses.append(float(loss))
        if state.step == common.SAVE_AT:
            dp.save(tmp_path / "ckpt.safetensors", state)
    params, ref_losses = _plain_training(common.init_params(seed=0), common.STEPS)
    assert state.step == common.STEPS and losses == ref_losses
    for k in params:
        np.testing.assert_array_equal(state.params[k], params[k])
    resumed = dp.restore(tmp_path / "ckpt.safetensors", like=dp.init(common.init_params(seed=1)))
    assert resumed.step == common.SAVE_AT
    for i in range(resumed.step, common.STEPS):
        resumed, _ = dp.step(resumed, common.global_batch(i))
    assert dist.tree_hash(resumed) == dist.tree_hash(state)   # bit-identical resume


def test_data_parallel_aux_and_keys():
    def loss_fn(params, batch, key):
        noise = random.normal(key, (1,))
        return common.loss_fn(params, batch) + 0 * noise.sum(), noise
    dp = dist.DataParallel(loss_fn, common.optimizer(), has_aux=True, donate=False)
    state = dp.init(common.init_params(seed=0))
    key = random.PRNGKey(5)
    new, (loss, aux) = dp.step(state, common.global_batch(0), key)
    np.testing.assert_array_equal(aux, random.normal(random.fold_in(key, 0), (1,)))
    np.testing.assert_allclose(loss, common.loss_fn(state.params, common.global_batch(0)), *F32)
    assert new.step == 1 and state.params["w1"].shape == (4, 8)   # not donated: still readable
    with pytest.raises(ValueError, match="check_every must be >= 0"):
        dist.DataParallel(loss_fn, common.optimizer(), check_every=-1)


# --------------------------------------------------------------------------- two processes

def _job_env() -> dict:
    """One core per process: one OpenBLAS thread, no compiler worker thread."""
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", FUNGRAD_THREADS="1")


def _mpiexec(script: str, *args: str, n: int = 2) -> tuple[list[str], dict]:
    return [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable,
            os.path.join(SCRIPTS, script), *args], _job_env()


def _run_jobs(jobs: dict, out_dir, timeout: float = 300) -> dict:
    """Start every job at once (most of their time is start-up and waiting); wait for all.

    Returns name -> (exit status, output, the time.time() at which it exited)."""
    procs, start, done = {}, time.monotonic(), {}
    for name, (cmd, env) in jobs.items():
        with open(out_dir / f"{name}.log", "w") as log:   # the child keeps its own descriptor
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                           cwd=SCRIPTS, start_new_session=True)
    while len(done) < len(procs) and time.monotonic() - start < timeout:
        for name, proc in procs.items():
            if name not in done and proc.poll() is not None:
                done[name] = time.time()
        time.sleep(0.05)
    results = {}
    for name, proc in procs.items():
        if name not in done:
            # a hung job: kill mpiexec and its processes; the test reading it fails
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        results[name] = (proc.returncode, (out_dir / f"{name}.log").read_text(),
                         done.get(name, float("inf")))
    return results


def _spawned(script: str, *args: str) -> tuple[list[str], dict]:
    """A script that starts its second process itself (``fungrad.distributed.spawn``)."""
    return [sys.executable, os.path.join(SCRIPTS, script), *args], _job_env()


FAULTS = ("kill", "stall", "stall-raise")
SPAWN_FAULTS = ("spawn-kill", "spawn-stall", "spawn-raise")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """dp_checks.py and the fault scenarios, each on two processes (under mpiexec when it is
    installed, and started by spawn), run together once per test session: pytest-xdist
    workers share the results through a locked directory."""
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "distributed"
    out.mkdir(exist_ok=True)
    with open(out / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        summary = out / "results.json"
        if not summary.exists():
            (out / "spawn").mkdir()
            specs = {"checks-spawn": _spawned("dp_checks.py", str(out / "spawn"), "--spawn")}
            specs.update({mode: _spawned("dp_fault.py", mode) for mode in SPAWN_FAULTS})
            if comm_lib.MPI is not None and MPIEXEC is not None:
                specs["checks-mpiexec"] = _mpiexec("dp_checks.py", str(out))
                specs.update({mode: _mpiexec("dp_fault.py", mode) for mode in FAULTS})
            summary.write_text(json.dumps(_run_jobs(specs, out)))
        results = json.loads(summary.read_text())
    return types.SimpleNamespace(out=out, results=results)


@pytest.fixture(scope="module", params=[pytest.param("mpiexec", marks=needs_mpi), "spawn"])
def two_processes(jobs, request):
    """What each process of dp_checks.py computed, by rank, for each way of launching it."""
    status, output, _ = jobs.results[f"checks-{request.param}"]
    assert status == 0, output
    out = jobs.out / "spawn" if request.param == "spawn" else jobs.out
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    return types.SimpleNamespace(ranks=ranks, checkpoint=out / "state.safetensors")


JAX_OPS = types.SimpleNamespace(
    psum=jax.lax.psum, pmean=jax.lax.pmean, pmax=jax.lax.pmax, pmin=jax.lax.pmin,
    all_gather=jax.lax.all_gather, axis_index=jax.lax.axis_index, sin=jnp_ref.sin,
    broadcast=lambda x, name, root: jax.lax.all_gather(x, name)[root])
INPUTS = np.stack([common.collective_input(r) for r in range(2)])


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_collectives_on_two_processes_match_jax(two_processes, mode):
    ref = jax.vmap(lambda x: common.collective_values(JAX_OPS, x), axis_name=common.AXIS)(INPUTS)
    for r, got in enumerate(two_processes.ranks):
        assert got["process_count"] == 2 and got["rank"] == r
        for name, want in ref.items():
            value = got[f"{mode}/{name}"]
            assert value.dtype == np.asarray(want).dtype, name
            np.testing.assert_allclose(value, np.asarray(want)[r], *F32, err_msg=name)


def test_vmap_over_a_local_batch_on_two_processes(two_processes):
    rows = jax.vmap(jax.vmap(lambda row: jax.lax.psum(row, "dp") * row), axis_name="dp")(INPUTS)
    gathered = jax.vmap(jax.vmap(lambda row: jax.lax.all_gather(row, "dp")), axis_name="dp")(INPUTS)
    for r, got in enumerate(two_processes.ranks):
        np.testing.assert_allclose(got["vmap/psum_rows"], rows[r], *F32)
        np.testing.assert_allclose(got["vmap/all_gather_rows"], gathered[r], *F32)


def test_gradients_through_collectives_on_two_processes_match_jax(two_processes):
    ref = jax.vmap(jax.grad(lambda x: common.objective(JAX_OPS, x)), axis_name=common.AXIS)(INPUTS)
    lax_ops = types.SimpleNamespace(pmax=lax.pmax, pmin=lax.pmin)   # jax has no pmax derivative
    ref_pmax = fungrad.vmap(fungrad.grad(lambda x: common.pmax_objective(lax_ops, x)),
                            axis_name=common.AXIS)(INPUTS)
    for r, got in enumerate(two_processes.ranks):
        np.testing.assert_allclose(got["grad/objective"], ref[r], *F32_GRAD)
        np.testing.assert_allclose(got["jit_grad/objective"], ref[r], *F32_GRAD)
        np.testing.assert_allclose(got["grad/pmax_objective"], ref_pmax[r], *F32_GRAD)


def test_rank_keys_differ_by_process(two_processes):
    for r, got in enumerate(two_processes.ranks):
        np.testing.assert_array_equal(got["rank_key"],
                                      random.key_data(random.fold_in(random.PRNGKey(3), r)))


def test_averaged_gradients_equal_the_gradient_of_the_concatenated_batch(two_processes):
    whole = fungrad.grad(common.loss_fn)(common.init_params(seed=0), common.global_batch(0))
    for got in two_processes.ranks:
        for k, want in whole.items():
            np.testing.assert_allclose(got[f"fused_grads/{k}"], want, *F32, err_msg=k)


def test_two_processes_train_like_one_with_the_whole_batch(two_processes):
    """STEPS steps on 2 processes (4 examples each) against 1 process on the 8-example global
    batches: equal to float32 rounding (rtol 1e-5, atol 1e-6: the two means of 4 are summed
    in another order than one mean of 8); the two replicas are bit-identical."""
    params, losses = _plain_training(common.init_params(seed=0), common.STEPS)
    p0, p1 = two_processes.ranks
    np.testing.assert_allclose(p0["losses"], losses, *F32)
    for k, want in params.items():
        np.testing.assert_allclose(p0[f"trained/{k}"], want, *F32, err_msg=k)
        np.testing.assert_array_equal(p0[f"trained/{k}"], p1[f"trained/{k}"])


def test_resume_is_bit_identical_and_works_on_any_number_of_processes(two_processes):
    for got in two_processes.ranks:
        assert int(got["resumed_step"]) == common.SAVE_AT
        for k in ("w1", "b1", "w2", "b2"):
            np.testing.assert_array_equal(got[f"resumed/{k}"], got[f"trained/{k}"], err_msg=k)
    dp = dist.DataParallel(common.loss_fn, common.optimizer())   # one process, same checkpoint
    state = dp.restore(two_processes.checkpoint, like=dp.init(common.init_params(seed=0)))
    for i in range(state.step, common.STEPS):
        state, _ = dp.step(state, dp.shard(common.global_batch(i)))
    for k, v in state.params.items():
        np.testing.assert_allclose(v, two_processes.ranks[0][f"trained/{k}"], *F32, err_msg=k)


def test_replica_check_catches_a_drifted_process(two_processes):
    for got in two_processes.ranks:
        assert ("is not identical on every process: processes [1] differ from process 0"
                in str(got["mismatch_error"]))


def _fault(jobs, mode: str) -> tuple[int, str, float]:
    """Exit status, output, and seconds from process 1's failure to the end of the job."""
    status, out, ended = jobs.results[mode]
    stops = re.findall(r"process 1 stops at ([0-9.]+)", out)
    assert stops, out
    return status, out, ended - float(stops[0])


@needs_mpi
def test_a_killed_process_ends_the_job(jobs):
    status, out, seconds = _fault(jobs, "kill")
    assert status != 0 and seconds < 30, (status, seconds, out)
    assert "process 1 finished step 1" in out and "process 0 finished step 5" not in out, out


@needs_mpi
def test_a_stalled_process_times_out_and_aborts_the_job(jobs):
    status, out, seconds = _fault(jobs, "stall")
    assert status == comm_lib.ABORT_CODE and seconds < 30, (status, seconds, out)
    assert "process 0 finished step 2" not in out, out
    assert ("all-reduce (sum) of 50 float32 values on process 0 of 2 "
            "did not complete within 3 s") in out, out
    assert "Aborting the job" in out, out


@needs_mpi
def test_a_timeout_can_raise_instead_of_aborting(jobs):
    status, out, seconds = _fault(jobs, "stall-raise")
    assert status == 7 and seconds < 30, (status, seconds, out)
    assert "process 0 caught CollectiveTimeoutError: all-reduce (sum)" in out, out


def test_spawn_a_killed_process_ends_the_job(jobs):
    status, out, seconds = _fault(jobs, "spawn-kill")
    assert status == 7 and seconds < 30, (status, seconds, out)
    assert ("process 0 caught DistributedError: all-reduce (sum) of 50 float32 values on process "
            "0 of 2: another process of the job died") in out, out
    assert "process 0 finished step 5" not in out, out


def test_spawn_a_stalled_process_times_out_in_process_0(jobs):
    status, out, seconds = _fault(jobs, "spawn-stall")
    assert status == 7 and seconds < 30, (status, seconds, out)
    assert ("process 0 caught CollectiveTimeoutError: all-reduce (sum) of 50 float32 values on "
            "process 0 of 2 did not complete within 3 s") in out, out
    assert "fungrad.distributed.spawn(timeout=...)" in out, out


def test_spawn_a_failing_process_ends_the_job_with_its_traceback(jobs):
    status, out, seconds = _fault(jobs, "spawn-raise")
    assert status == 7 and seconds < 30, (status, seconds, out)
    assert "ValueError: process 1 fails on purpose" in out, out
    assert ("process 0 caught DistributedError: all-reduce (sum) of 50 float32 values on process "
            "0 of 2: process 1 failed and aborted the job") in out, out


# --------------------------------------------------------------------------- GPUs (NCCL)

def _gpu_reason() -> str | None:
    if comm_lib.MPI is None or MPIEXEC is None:
        return "mpi4py or mpiexec is not installed"
    if not any(d.platform == "gpu" for d in fungrad.devices()):
        return "CuPy with a GPU is not available here: the NCCL path was not run"
    return None


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_nccl_on_one_process(tmp_path):
    result = _run_jobs({"nccl": _mpiexec("nccl_check.py", str(tmp_path), n=1)}, tmp_path)["nccl"]
    assert result[0] == 0, result[1]
    got = dict(np.load(tmp_path / "rank0.npz"))
    np.testing.assert_allclose(got["psum"], common.collective_input(0), *F32)
    params, _ = _plain_training(common.init_params(seed=0), common.STEPS)
    for k, want in params.items():
        np.testing.assert_allclose(got[f"trained/{k}"], want, *F32, err_msg=k)


# --------------------------------------------------------------------------- spawn (shared memory)

def test_spawn_collectives_on_three_processes(tmp_path):
    """Every collective of the shared-memory communicator against NumPy on the three
    processes' inputs: values, dtypes and shapes, the same bits on every process, buffers
    that grow past their first size, and 50 calls in a row."""
    from distributed_scripts import shm_checks
    cmd, env = _spawned("shm_checks.py", str(tmp_path))
    proc = subprocess.Popen(cmd, env=env, cwd=SCRIPTS, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(shm_checks.PROCESSES)]
    inputs = lambda n, dtype: np.stack([shm_checks.rank_values(r, n, dtype) for r in range(3)])
    reduce = {"sum": np.sum, "max": np.max, "min": np.min}
    want = {f"{op}/{n}": reduce[op](inputs(n, np.float32), axis=0)
            for n in shm_checks.SIZES for op in reduce}
    want.update({"sum/int64": inputs(5, np.int64).sum(0), "max/bool": np.array([True, False]),
                 "sum/bfloat16": inputs(4, np.float32).sum(0), "sum/scalar": np.float32(4.5),
                 "allgather": np.array([[[r, 10 + r]] for r in range(3)], np.int32),
                 "bcast": np.full((2, 2), 2.0), "process_count": 3,
                 "sequence": np.arange(50, dtype=np.float32) * 6})
    dtypes = {k: "float32" for k in want} | {"sum/int64": "int64", "max/bool": "bool",
                                             "sum/bfloat16": "bfloat16", "allgather": "int32",
                                             "bcast": "float64", "process_count": "int64"}
    for got in ranks:
        assert sorted(got["dtypes"]) == sorted(f"{k}={v}" for k, v in dtypes.items())
        for k, v in want.items():
            assert got[k].shape == np.shape(v), k
            np.testing.assert_array_equal(got[k], v, err_msg=k)
    if os.path.isdir("/dev/shm"):   # the segments are removed at the end (Linux shows them here)
        assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"fungrad-{proc.pid}-")]


def test_spawn_checks_its_arguments_and_runs_one_process_inline():
    with pytest.raises(ValueError, match="spawn: nprocs must be an int >= 1, got 0"):
        dist.spawn(print, (), 0)
    assert dist.spawn(lambda a, b: (dist.process_count(), a + b), (1, 2), 1) == (1, 3)
    with dist.process_axis("dp"):
        assert dist.spawn(lambda: dist.psum(1, "dp"), (), 1) == 1
