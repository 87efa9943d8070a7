"""The model, data and inputs shared by the multi-process scripts and tests/test_distributed.py,
so that the test can recompute on one process what the processes computed together."""
from __future__ import annotations

import numpy as np

import fungrad.numpy as jnp
from fungrad import optim
from fungrad.distributed import batch_indices

NUM_EXAMPLES, GLOBAL_BATCH, SEED = 32, 8, 7
STEPS, SAVE_AT = 4, 2
AXIS = "dp"
GATHER_WEIGHTS = np.linspace(-1, 1, 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
DATA_RNG = np.random.default_rng(0)
X = DATA_RNG.standard_normal((NUM_EXAMPLES, 4)).astype(np.float32)
Y = DATA_RNG.standard_normal((NUM_EXAMPLES, 1)).astype(np.float32)


def init_params(seed: int) -> dict:
    """A small MLP; each process passes its own seed, DataParallel.init keeps process 0's."""
    rng = np.random.default_rng(seed)
    return {"w1": jnp.asarray(rng.standard_normal((4, 8)).astype(np.float32) * 0.5),
            "b1": jnp.zeros(8),
            "w2": jnp.asarray(rng.standard_normal((8, 1)).astype(np.float32) * 0.5),
            "b2": jnp.zeros(1)}


def loss_fn(params: dict, batch: tuple) -> jnp.ndarray:
    x, y = batch
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def optimizer() -> optim.GradientTransformation:
    return optim.sgd(0.05, momentum=0.9)


def global_batch(step: int) -> tuple:
    """Global batch ``step`` (every process's shard of it, as a single process sees it)."""
    idx = batch_indices(NUM_EXAMPLES, GLOBAL_BATCH, step, seed=SEED, index=0, count=1)
    return X[idx], Y[idx]


def collective_input(rank: int) -> np.ndarray:
    """What process ``rank`` feeds to the collectives (distinct values, one tie in pmax)."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3) * (rank + 1) + rank
    x[0, 0] = 5.0
    return x


def collective_values(ops, x) -> dict:
    """Every collective on ``x``; ``ops`` is fungrad.distributed (or jax.lax under a vmap
    named AXIS, for the reference)."""
    return {"psum": ops.psum(x, AXIS), "pmean": ops.pmean(x, AXIS), "pmax": ops.pmax(x, AXIS),
            "pmin": ops.pmin(x, AXIS), "all_gather": ops.all_gather(x, AXIS),
            "all_gather_tiled": ops.all_gather(x, AXIS, axis=1, tiled=True),
            "broadcast": ops.broadcast(x, AXIS, root=1), "axis_index": ops.axis_index(AXIS),
            "psum_int": ops.psum(x.astype("int32"), AXIS), "psum_one": ops.psum(1, AXIS),
            "psum_float16": ops.psum(x.astype("float16"), AXIS)}


def objective(ops, x):
    """A scalar through the linear collectives, for gradients (JAX defines them all)."""
    return ((ops.psum(x ** 2, AXIS) * 0.5).sum() + ops.sin(ops.pmean(x, AXIS)).sum()
            + (ops.all_gather(x, AXIS) * GATHER_WEIGHTS).sum()
            + (ops.all_gather(x, AXIS, axis=1, tiled=True) ** 2).sum()
            + (ops.broadcast(x, AXIS, root=1) ** 3).sum())


def pmax_objective(ops, x):
    """A scalar through pmax and pmin (fungrad's lax defines their JVPs; JAX does not)."""
    return (ops.pmax(x, AXIS) * x).sum() + (ops.pmin(x * x, AXIS)).sum()
