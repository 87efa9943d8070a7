"""Data-parallel training across processes, as ``torch.nn.parallel.DistributedDataParallel``.

Every process holds the same parameters and optimiser state and runs the same jitted
step on its own shard of each global batch. The step computes the local gradient,
averages gradients (and the loss) over the processes with one fused all-reduce of one
flat buffer per dtype (``fused_pmean``: one call per step, not one per leaf), and applies
the same update everywhere, so the replicas stay identical.

* Data: ``shard(batch)`` is this process's contiguous slice of a global batch, and
  ``batch_indices`` a deterministic per-process example order, a pure function of
  ``(seed, step)`` whose union over the processes does not depend on their number: a
  run resumed on another number of processes continues the same global batches.
* Keys: ``rank_key(key)`` is ``random.fold_in(key, axis_index(axis_name))``, a different
  stream per process (dropout masks differ across shards, as in DDP).
* Checks: ``DataParallel(check_every=N)`` compares a hash of the parameters and
  optimiser state across processes every N steps (``ReplicaMismatchError``).
* Checkpoints: ``save`` is written by process 0 only, atomically
  (``fungrad.train.save_checkpoint``), then every process waits for it; ``restore`` reads
  it on every process (a file system they share), whatever their number.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fungrad import random, tree
from fungrad.distributed import runtime
from fungrad.distributed.collectives import axis_index, broadcast, fused_pmean
from fungrad.distributed.errors import ReplicaMismatchError
from fungrad.distributed.runtime import DEFAULT_AXIS, AxisName
from fungrad.optim import GradientTransformation, apply_updates
from fungrad.train.checkpoint import load_checkpoint, save_checkpoint
from fungrad.transforms.api import value_and_grad
from fungrad.transforms.jit import jit


# --------------------------------------------------------------------------- keys

def rank_key(key: Any, axis_name: AxisName = DEFAULT_AXIS) -> Any:
    """``key`` folded with this process's index: a different random stream per process."""
    return random.fold_in(key, axis_index(axis_name))


# --------------------------------------------------------------------------- data

def _check_shard(n: int, count: int, what: str) -> None:
    if n % count:
        raise ValueError(f"shard: {what} {n} does not split evenly over {count} processes; use a "
                         "global batch size divisible by process_count()")


def shard(batch: Any, *, index: int | None = None, count: int | None = None) -> Any:
    """Process ``index``'s contiguous slice of a global batch (every leaf's leading axis).

    ``index`` and ``count`` default to ``process_index()`` and ``process_count()``. The
    leading size must divide evenly, so that each process's mean loss weighs equally.
    """
    index = runtime.process_index() if index is None else index
    count = runtime.process_count() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"shard: index {index} is out of range for {count} processes")

    def one(leaf):
        n = np.shape(leaf)[0] if np.ndim(leaf) else 0
        _check_shard(n, count, "leading size")
        per = n // count
        return leaf[index * per:(index + 1) * per]
    return tree.map(one, batch)


def batch_indices(num_examples: int, global_batch_size: int, step: int, *, seed: int,
                  index: int | None = None, count: int | None = None) -> np.ndarray:
    """The example indices of process ``index``'s shard of global batch ``step``.

    Epoch ``e`` visits the examples in the order of a permutation drawn from
    ``(seed, e)``; global batch ``step`` is the next ``global_batch_size`` of them (an
    epoch drops its last partial batch) and each process takes its contiguous share. A
    pure function of ``(seed, step)``: the same on every run, and the union over the
    processes does not depend on how many there are.
    """
    index = runtime.process_index() if index is None else index
    count = runtime.process_count() if count is None else count
    _check_shard(global_batch_size, count, "global batch size")
    per_epoch = num_examples // global_batch_size
    if per_epoch == 0:
        raise ValueError(f"batch_indices: global batch size {global_batch_size} exceeds the "
                         f"{num_examples} examples")
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    per = global_batch_size // count
    start = position * global_batch_size + index * per
    return order[start:start + per]


# --------------------------------------------------------------------------- replica checks

def tree_hash(x: Any) -> int:
    """A 64-bit hash of every leaf's dtype, shape and bytes (for comparing replicas)."""
    h = hashlib.blake2b(digest_size=8)
    for leaf in tree.leaves(x):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return int.from_bytes(h.digest(), "little")


def check_replicas(x: Any, *, what: str = "state") -> None:
    """Raise ``ReplicaMismatchError`` on every process unless ``x`` is bit-identical on all.

    One all-gather of a 64-bit hash per process; the message lists the processes whose
    ``x`` differs from process 0's.
    """
    group = runtime.world()
    hashes = group.host.allgather(np.array([tree_hash(x)], np.uint64))[:, 0]
    differ = [r for r in range(group.size) if hashes[r] != hashes[0]]
    if differ:
        raise ReplicaMismatchError(
            f"{what} is not identical on every process: processes {differ} differ from process 0 "
            f"(hashes {[f'{int(h):016x}' for h in hashes]}); the replicas no longer train the "
            "same model")


# --------------------------------------------------------------------------- the helper

class TrainState(NamedTuple):
    """What the replicas share: the number of steps taken, parameters, optimiser state."""
    step: int
    params: Any
    opt_state: Any


class DataParallel:
    """Train ``loss_fn`` with ``optimizer`` on every process of the job, data-parallel.

    ``loss_fn(params, batch)`` (or ``loss_fn(params, batch, key)`` when ``step`` gets a
    key) returns this process's mean loss on its shard, or ``(loss, aux)`` with
    ``has_aux=True``. With one process (no ``initialize()``) it is plain training.

    Example (each process runs the same script)::

        dp = DataParallel(loss_fn, optim.adamw(1e-3), check_every=100)
        state = dp.init(params)                  # process 0's params everywhere
        for step in range(steps):
            state, loss = dp.step(state, dp.shard(global_batch(step)))
        dp.save("ckpt.safetensors", state)       # written by process 0
    """

    def __init__(self, loss_fn: Callable[..., Any], optimizer: GradientTransformation, *,
                 axis_name: AxisName = DEFAULT_AXIS, has_aux: bool = False, check_every: int = 0,
                 donate: bool = True) -> None:
        if check_every < 0:
            raise ValueError(f"DataParallel: check_every must be >= 0, got {check_every}")
        self.loss_fn, self.optimizer, self.axis_name = loss_fn, optimizer, axis_name
        self.has_aux, self.check_every = has_aux, int(check_every)
        donated = (0, 1) if donate else ()
        self._steps = {False: jit(self._local_step, donate_argnums=donated),
                       True: jit(self._local_step_with_key, donate_argnums=donated)}

    @property
    def group(self) -> runtime.ProcessGroup:
        """The job's processes, read at each use (``initialize()`` may follow ``__init__``)."""
        return runtime.world()

    @property
    def process_index(self) -> int:
        """This process's index among the processes training together."""
        return self.group.rank

    @property
    def process_count(self) -> int:
        """The number of processes training together (1 without ``initialize()``)."""
        return self.group.size

    def shard(self, batch: Any) -> Any:
        """This process's slice of the global ``batch`` (see ``shard``)."""
        return shard(batch, index=self.group.rank, count=self.group.size)

    def init(self, params: Any) -> TrainState:
        """The first state: process 0's ``params`` on every process, the optimiser's state."""
        with runtime.process_axis(self.axis_name):
            params = broadcast(params, self.axis_name, root=0)
        return TrainState(0, params, self.optimizer.init(params))

    def _update(self, params, opt_state, batch, key):
        args = (params, batch) if key is None else (params, batch, rank_key(key, self.axis_name))
        out, grads = value_and_grad(self.loss_fn, has_aux=self.has_aux)(*args)
        loss, aux = out if self.has_aux else (out, None)
        grads, loss = fused_pmean((grads, loss), self.axis_name)   # one all-reduce per step
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, loss, aux

    def _local_step(self, params, opt_state, batch):
        return self._update(params, opt_state, batch, None)

    def _local_step_with_key(self, params, opt_state, batch, key):
        return self._update(params, opt_state, batch, key)

    def step(self, state: TrainState, batch: Any, key: Any = None) -> tuple[TrainState, Any]:
        """One synchronous step on this process's ``batch`` shard.

        Returns the new state and the loss averaged over the processes (``(loss, aux)``
        with ``has_aux``; ``aux`` is this process's own). ``key``, if given, reaches
        ``loss_fn`` folded with the process index. The state's buffers are donated.
        """
        args = (state.params, state.opt_state, batch) + (() if key is None else (key,))
        with runtime.process_axis(self.axis_name):
            params, opt_state, loss, aux = self._steps[key is not None](*args)
        state = TrainState(state.step + 1, params, opt_state)
        if self.check_every and state.step % self.check_every == 0:
            check_replicas(state, what=f"the training state after step {state.step}")
        return state, ((loss, aux) if self.has_aux else loss)

    def save(self, path: str | os.PathLike, state: TrainState) -> None:
        """Write ``state`` to ``path`` from process 0 (atomically); every process returns
        once the file is complete."""
        if self.group.rank == 0:
            save_checkpoint(path, state)
        self.group.host.barrier()

    def restore(self, path: str | os.PathLike, like: TrainState) -> TrainState:
        """Read the state saved at ``path`` (on every process; any number of processes),
        checked against the structure, shapes and dtypes of ``like``."""
        state = load_checkpoint(path, like=like)
        if self.check_every:
            check_replicas(state, what=f"the state restored from {os.fspath(path)}")
        return state
