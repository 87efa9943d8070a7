"""``jit``: stage a function into a jaxpr once per abstract signature and run it compiled.

``jit(f)`` keeps a cache keyed by the abstract signature of a call: pytree
structure, shapes, dtypes and weak types of the array arguments, values of the
static arguments, and device. A hit goes straight to the generated function
(no tracing, no abstract evaluation); under a transformation the call binds
``jit_p`` (``jit_primitive``), whose rules make ``jit`` compose with ``grad``,
``vmap`` and the others. ``lower``/``compile`` expose the optimised IR and the
executable; ``log_compiles`` and ``explain_cache_misses`` explain every cache miss,
``no_tracing`` refuses them; ``disable_jit`` runs functions op by op.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import logging
import os
import sys
import time
import weakref
from typing import Any, Callable, ContextManager, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from fungrad import backends
from fungrad import tree as tree_util
from fungrad._core import core, dtypes, fpstate, monitoring, transfer
from fungrad._core.array import Array, device_put
from fungrad._core.core import ClosedJaxpr, Jaxpr, ShapedArray, Tracer
from fungrad._core.eval import EVAL_TRACE
from fungrad._core.ref import Ref
from fungrad.backends.bfloat16 import Bfloat16Buffer
from fungrad.compiler import codegen, cuda_fuse, passes, pipeline
from fungrad.config import config
from fungrad.errors import ResourceExhaustedError
from fungrad.interpreters import partial_eval as pe
from fungrad.transforms.api import (ShapeDtypeStruct, _flat_outputs, _fun_name, check_argnums,
                                    path_str)
from fungrad.transforms import jit_refs, key_reuse
from fungrad.transforms.arg_info import make_args_info
from fungrad.transforms.jit_primitive import (NUMPY_BUFFERS, as_buffer, call_jit, get_executable,
                                             jit_p)

__all__ = ["jit", "jit_p", "disable_jit", "JitWrapped", "Traced", "Lowered", "Compiled",
           "CompiledMemoryStats", "CompilerOptions", "record_calls"]

logger = logging.getLogger("fungrad.jit")


# --------------------------------------------------------------------------- the jit API

class DeletedBuffer:
    """Stands in for the buffer of an ``Array`` that was donated to a jitted function."""
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"Array has been deleted with shape={self.aval.str_short()}: it was "
                           "donated to a jitted function (donate_argnums/donate_argnames).")


def _is_exclusive(x: Array) -> bool:
    """Whether ``x``'s buffer is referenced by ``x`` alone (no views, no other owner), or
    by ``x`` and the output ring of the executable that returned it."""
    refs = sys.getrefcount(x._value)
    return refs <= _EXCLUSIVE_REFS or \
        refs == _EXCLUSIVE_REFS + 1 and id(x._value) in codegen.RING_HELD


def _exclusive_refs() -> int:
    probe = Array(np.zeros(1))
    return sys.getrefcount(probe._value)


_EXCLUSIVE_REFS = _exclusive_refs()


def _owns_memory(buf: Any) -> bool:
    """Whether ``buf`` is a NumPy or CuPy array owning its memory (no view), or a device
    bfloat16 buffer whose bits are one."""
    if type(buf) is np.ndarray:
        return buf.base is None and buf.flags.writeable
    if type(buf) is Bfloat16Buffer:
        return _owns_memory(buf.storage)
    return type(buf).__module__.startswith("cupy") and buf.base is None


def _donatable(x: Array) -> Any:
    """The buffer of a donated Array (one owning its memory), or a copy when anything else
    may see it."""
    exclusive = _is_exclusive(x)
    buf = x._value
    if not _owns_memory(buf) or not exclusive:
        return buf.copy() if hasattr(buf, "copy") else buf
    return buf


def _leaf_key(x: Any) -> Any:
    """The abstract signature of one argument leaf (part of the cache key)."""
    t = type(x)
    if t is Array:
        v = x._value
        if x._device is None and (isinstance(v, NUMPY_BUFFERS) or
                                  x.device == backends.default_device()):
            return (v.shape, v.dtype, x.weak_type)  # uncommitted: runs on the default device
        return (v.shape, v.dtype, x.weak_type, x.device)
    if t is float or t is int or t is bool or t is complex:
        return t
    if isinstance(x, Tracer):
        a = x.aval
        return (a.shape, a.dtype, a.weak_type)
    if isinstance(x, NUMPY_BUFFERS):
        return (x.shape, dtypes.canonicalize_dtype(x.dtype), False)
    if t is ShapeDtypeStruct:  # for ``lower``, ``trace`` and ``eval_shape`` (never cached)
        return (x.shape, dtypes.canonicalize_dtype(x.dtype), bool(x.weak_type), "abstract")
    if t is Ref:  # a mutable array reference: its type (``jit_refs``)
        return jit_refs.key(x)
    return None


def _flat_key(args: tuple) -> tuple | None:
    """The cache key when every argument is an uncommitted NumPy-backed Array (else None).

    It ends with ``config.trace_context``, the default device setting and the values of the
    user contexts (``fungrad.make_user_context``): uncommitted arguments run on the default
    device, so an entry compiled while the default was a CPU is not reused once it names
    another device (as JAX keys its cache on ``jax_default_device``)."""
    key = []
    for a in args:
        if type(a) is not Array:
            return None
        v = a._value
        if type(v) is not np.ndarray or a._device is not None:
            return None
        key.append((v.shape, v.dtype, a.weak_type))
    key.append(config.trace_context)
    return tuple(key)


def _leaf_aval(x: Any) -> ShapedArray:
    if isinstance(x, (Array, Tracer)):
        return x.aval
    if type(x) is Ref:  # traced as the array it holds (``jit_refs``)
        return x._inner
    if type(x) is ShapeDtypeStruct:
        return ShapedArray(x.shape, dtypes.canonicalize_dtype(x.dtype), bool(x.weak_type))
    return core.get_aval(x)


def _from_host(x: Any, aval: ShapedArray) -> Any:
    """The buffer for a host argument (a NumPy value or Python scalar): an implicit
    host-to-device transfer, which the transfer guard checks."""
    level = config.transfer_guard_host_to_device
    if level != "allow":
        transfer.guard(level, "host-to-device", False, aval.str_short())
    return as_buffer(np, x, aval)


def _raise_out_of_memory(name: str, err: MemoryError) -> None:
    """Re-raise an allocation failure inside compiled code as ``ResourceExhaustedError``
    naming the compiled function and the shape and dtype NumPy could not allocate."""
    shape, dtype = getattr(err, "shape", None), getattr(err, "dtype", None)
    if isinstance(err, ResourceExhaustedError) or shape is None or dtype is None:
        raise err
    raise ResourceExhaustedError(name, tuple(shape), dtype) from err


class _Entry:
    """One compiled signature: the traced jaxpr, its executable and how to call it."""
    __slots__ = ("closed", "exe", "fn", "in_tree", "out_tree", "out_weak", "out_leaf", "in_avals",
                 "direct", "donated", "donate_any", "name", "hoisted", "description",
                 "args_only", "refs")

    def __init__(self, closed: ClosedJaxpr, in_tree: Any, out_tree: Any, in_avals: list,
                 donated: tuple, name: str, hoisted: list, description: list) -> None:
        self.closed = closed
        self.in_tree = in_tree
        self.exe = None
        self.fn = None
        self.out_tree = out_tree
        self.out_weak = [a.weak_type for a in closed.out_avals]
        self.out_leaf = out_tree.is_leaf()
        self.in_avals = in_avals
        self.donated = donated
        self.donate_any = any(donated)
        self.name = name
        self.hoisted = hoisted
        self.description = description
        self.direct = False
        self.args_only = False  # in_tree is the positional arguments' (no keywords, statics)
        self.refs: jit_refs.JitRefs | None = None  # Ref arguments, closed-over refs

    def executable(self) -> pipeline.Executable:
        if self.exe is None:
            self.exe = get_executable(self.closed, np, self.donated if self.donate_any else None,
                                      self.name)
            self.fn = self.exe.fn
        return self.exe

    def call(self, leaves: list) -> Any:
        if core._ctx.trace is EVAL_TRACE and self.direct:
            if self.fn is None:
                self.executable()
            if self.donate_any:
                bufs = self._donated_buffers(leaves)
            else:
                bufs = [x._value if type(x) is Array else _from_host(x, a)
                        for x, a in zip(leaves, self.in_avals)]
            try:
                outs = self.fn(*bufs)
            except MemoryError as e:
                _raise_out_of_memory(f"jit({self.name})", e)
            if self.out_leaf:
                return Array(outs[0], self.out_weak[0])
            return tree_util.unflatten(self.out_tree,
                                       [Array(o, w) for o, w in zip(outs, self.out_weak)])
        return self.call_bound(leaves)

    _call_any = call  # what ``refuse_execution(False)`` restores

    def call_bound(self, leaves: list) -> Any:
        """Call through ``jit_p``'s bind: the current trace's rule for it runs or stages it."""
        self._check_devices(leaves)
        refs, ref_leaves, ref_values = self.refs, leaves, []
        if refs is not None:  # refs go in as their values, and come back written (jit_refs)
            leaves, ref_values = refs.arguments(leaves)
        args = [x if isinstance(x, (Array, Tracer)) else Array(_from_host(x, a), a.weak_type)
                for x, a in zip(leaves, self.in_avals)]
        donated = None
        if self.donate_any and refs is None and core._ctx.trace is EVAL_TRACE:  # on a device
            args = self._donated_arrays(args)
            donated = (False,) * len(self.hoisted) + self.donated
        outs = call_jit(self.closed, [*self.hoisted, *args, *ref_values], self.name,
                        donated=donated)
        if refs is not None:
            outs = refs.write_back(ref_leaves, outs, self.out_tree.num_leaves)
        return tree_util.unflatten(self.out_tree, outs)

    def _check_devices(self, leaves: list) -> None:
        """Committed arguments on different devices: JAX's error, naming the arguments."""
        devices = {x._device for x in leaves if type(x) is Array and x._device is not None}
        if len(devices) > 1:
            labels = [p.label.strip("'") for p in self.description[:len(leaves)]]
            raise backends.incompatible_devices(self.name, labels, leaves)

    def _donated_arrays(self, args: list) -> list:
        """``args`` (Arrays) as new Arrays holding their buffers, each donated one handed
        over (or copied when shared) and its donor deleted, as ``_donated_buffers`` does."""
        bufs = self._donated_buffers(args)
        return [Array(b, x.weak_type, x._device) for x, b in zip(args, bufs)]

    def _donated_buffers(self, leaves: list) -> list:
        """Buffers for the call; donated ones are handed over (copied when shared) and
        their Arrays deleted."""
        uses = collections.Counter(id(x._value) for x in leaves if type(x) is Array)
        bufs, donors = [], []
        for x, a, d in zip(leaves, self.in_avals, self.donated):
            if type(x) is not Array:
                bufs.append(_from_host(x, a))
            elif d:
                shared = uses[id(x._value)] > 1  # also passed as another argument
                bufs.append(x._value.copy() if shared else _donatable(x))
                donors.append(x)
            else:
                bufs.append(x._value)
        for x, a in zip(donors, [x.aval for x in donors]):
            x._value = DeletedBuffer(a)
        return bufs


def _normalize_nums(nums: int | Sequence[int] | None, what: str, api: str) -> tuple[int, ...]:
    """``static_argnums``/``donate_argnums`` as a tuple of ints (TypeError otherwise)."""
    return () if nums is None else check_argnums(nums, api, what, allow_empty=True)


def _normalize_names(names: str | Sequence[str] | None, what: str, api: str) -> tuple[str, ...]:
    """``static_argnames``/``donate_argnames`` as a tuple of str (TypeError otherwise)."""
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    if not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{api}: {what} must be a str or a sequence of str, got "
                        f"{type(names).__name__}: {names!r}")
    return tuple(names)


class JitWrapped:
    """A function compiled by ``jit``: call it like the original."""

    def __init__(self, fun: Callable, static_argnums: Any, static_argnames: Any,
                 donate_argnums: Any, donate_argnames: Any) -> None:
        if not callable(fun):
            raise TypeError(f"jit: expected a callable, got {type(fun).__name__}: {fun!r}")
        # the function's name, docstring and attributes, none shadowing this class's own (a
        # jnp ufunc object has a ``_call`` of its own)
        functools.update_wrapper(self, fun, updated=())
        self.__dict__.update({k: v for k, v in getattr(fun, "__dict__", {}).items()
                              if not hasattr(type(self), k)})
        self._fun = fun
        self._name = _fun_name(fun)
        try:
            self._signature = inspect.signature(fun)
        except (TypeError, ValueError):
            self._signature = None
        self._static_nums, self._static_names = self._resolve(
            static_argnums, static_argnames, "static_argnums", "static_argnames")
        self._donate_nums, self._donate_names = self._resolve(
            donate_argnums, donate_argnames, "donate_argnums", "donate_argnames")
        overlap = set(self._static_nums) & set(self._donate_nums)
        if overlap:
            raise ValueError(f"jit({self._name}): arguments {sorted(overlap)} cannot be both "
                             "static and donated")
        self._simple = not (self._static_nums or self._static_names)  # no statics to split off
        self._cache: dict[Any, _Entry] = _shared_cache(fun, (
            self._static_nums, self._static_names, self._donate_nums, self._donate_names))

    # -- argument bookkeeping
    def _positional_names(self) -> list[str]:
        if self._signature is None:
            return []
        return [p.name for p in self._signature.parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def _resolve(self, nums: Any, names: Any, nums_name: str, names_name: str
                 ) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Argnums and argnames complete each other through the signature (as in JAX)."""
        api = f"jit({self._name})"
        nums = _normalize_nums(nums, nums_name, api)
        names = _normalize_names(names, names_name, api)
        if self._signature is None:
            return nums, names
        self._check_signature(nums, names, nums_name, names_name)
        params = self._signature.parameters
        valid = {n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD,
                                                               p.POSITIONAL_ONLY)}
        positional = self._positional_names()
        names = names + tuple(positional[n] for n in nums
                              if -len(positional) <= n < len(positional)
                              and positional[n] in valid and positional[n] not in names)
        nums = nums + tuple(positional.index(n) for n in names
                            if n in positional and positional.index(n) not in nums)
        return nums, names

    def _check_signature(self, nums: tuple[int, ...], names: tuple[str, ...], nums_name: str,
                         names_name: str) -> None:
        """Reject, once at ``jit(...)``, argnums past the positional parameters (unless
        the function takes ``*args``) and argnames it does not take (unless ``**kwargs``)."""
        params = self._signature.parameters
        kinds = {p.kind for p in params.values()}
        n_pos = len(self._positional_names())
        if inspect.Parameter.VAR_POSITIONAL not in kinds and \
                any(not -n_pos <= n < n_pos for n in nums):
            raise ValueError(f"Jitted function {self._name} has {nums_name}={nums}, but only "
                             f"accepts {n_pos} positional arguments.")
        positional_only = set(names) & {n for n, p in params.items()
                                        if p.kind == p.POSITIONAL_ONLY}
        if positional_only:
            raise ValueError(f"Jitted function has invalid argnames {positional_only} in "
                             f"{names_name}. These are positional-only")
        bad = set(names) - {n for n, p in params.items()
                            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if bad and inspect.Parameter.VAR_KEYWORD not in kinds:
            raise ValueError(f"Jitted function has invalid argnames {bad} in {names_name}. "
                             "Function does not take these args.")

    def _arg_name(self, i: int) -> str:
        positional = self._positional_names()
        if i < len(positional):
            return positional[i]
        return f"args[{i}]"

    def _split(self, args: tuple, kwargs: dict) -> tuple[tuple, list, dict, tuple, list]:
        """Static values (hashed) and dynamic positional/keyword arguments."""
        nums = tuple(n % len(args) if n < 0 else n for n in self._static_nums
                     if -len(args) <= n < len(args))
        statics = []
        for i in sorted(nums):
            what = f"'{self._arg_name(i)}' (index {i})"
            statics.append(("pos", i, self._hashable(args[i], what)))
        for k in sorted(kwargs):
            if k in self._static_names:
                statics.append(("kw", k, self._hashable(kwargs[k], f"'{k}'")))
        dyn_args = [a for i, a in enumerate(args) if i not in nums]
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self._static_names}
        dyn_nums = [i for i in range(len(args)) if i not in nums]
        return tuple(statics), dyn_args, dyn_kwargs, nums, dyn_nums

    def _hashable(self, value: Any, what: str) -> tuple:
        try:
            hash(value)
        except TypeError as e:
            raise ValueError(
                f"Non-hashable static arguments are not supported, as this can lead to "
                f"unexpected cache-misses. Static argument {what} of type {type(value)} for "
                f"function {self._name} is non-hashable: {e}. Pass a hashable value (a "
                "tuple instead of a list, a frozen dataclass, ...) or make the argument "
                "dynamic.") from None
        return (type(value), value)

    # -- calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if config.disable_jit:
            return self._fun(*args, **kwargs)
        if config.debug_nans or config.debug_infs:
            return self._call_checked(args, kwargs)
        if self._simple and not kwargs:
            key = _flat_key(args)
            if key is not None:  # the fast path: positional arrays, no pytree to flatten
                entry = self._cache.get(key)
                if entry is not None:
                    return entry.call(args)
        return self._run_cached(args, kwargs)

    _call_unrecorded = __call__  # what ``record_calls`` restores

    def _run_cached(self, args: tuple, kwargs: dict) -> Any:
        key, leaves = self._key(args, kwargs)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._entry(args, kwargs, key, leaves)
        return entry.call(leaves)

    def _call_checked(self, args: tuple, kwargs: dict) -> Any:
        """With ``debug_nans``/``debug_infs``: a result holding a NaN (an infinity) makes the
        function run again op by op, which raises at the operation that made it, as JAX
        does."""
        nans, infs = config.debug_nans, config.debug_infs
        config.debug_nans = config.debug_infs = False  # checked here (a program that runs
        try:  # through the eager evaluator, as on a GPU, would raise "in jit" at once)
            out = self._run_cached(args, kwargs)
        finally:
            config.debug_nans, config.debug_infs = nans, infs
        # (inside another transformation the results are tracers: the outer call checks)
        kind = fpstate.nonfinite_kind([x._value for x in tree_util.leaves(out) if type(x) is Array])
        if kind is None:
            return out
        with disable_jit():
            self._fun(*args, **kwargs)  # raises FloatingPointError at the culprit
        raise FloatingPointError(f"invalid value ({kind}) encountered in jit({self._name}); "
                                 "run op by op, no operation produced one (the compiled code "
                                 "computed differently)")

    def _key(self, args: tuple, kwargs: dict) -> tuple[tuple, list]:
        """The cache key of a call and its dynamic argument leaves."""
        if self._simple and not kwargs:
            key = _flat_key(args)
            if key is not None:
                return key, list(args)
            leaves, treedef = tree_util.flatten(args)
            return (treedef, *[_leaf_key(x) for x in leaves], config.trace_context), leaves
        statics, dyn_args, dyn_kwargs, _, _ = self._split(args, kwargs)
        leaves, treedef = tree_util.flatten((tuple(dyn_args), dyn_kwargs))
        return (treedef, statics, *[_leaf_key(x) for x in leaves], config.trace_context), leaves

    def _entry(self, args: tuple, kwargs: dict, key: tuple, leaves: list,
               compile: bool = True) -> _Entry:
        """Trace (and compile) for the signature of ``args``; cache the result."""
        if config.no_tracing:
            raise RuntimeError(f"re-tracing function {self._name}{_defined_at(self._fun)} for "
                               "`jit`, but 'no_tracing' is set")
        start = time.perf_counter()
        statics, dyn_args, dyn_kwargs, static_nums, dyn_nums = self._split(args, kwargs)
        # Where each leaf comes from: (positional index or keyword name, path inside it).
        if self._simple and not kwargs:
            treedef = tree_util.structure(args)
            origins = [(p[0], p[1:]) for p, _ in tree_util.leaves_with_plain_path(args)]
        else:
            treedef = tree_util.structure((tuple(dyn_args), dyn_kwargs))
            origins = [(dyn_nums[p[1]] if p[0] == 0 else p[1], p[2:])
                       for p, _ in tree_util.leaves_with_plain_path((tuple(dyn_args), dyn_kwargs))]
        paths = [(self._arg_name(a) if isinstance(a, int) else a, path) for a, path in origins]
        for x, (name, path) in zip(leaves, paths):
            if compile and type(x) is ShapeDtypeStruct:
                raise TypeError(f"jit({self._name}): argument '{name}{path_str(path)}' is a "
                                f"{x!r}, which describes an array but holds no data: pass it "
                                "to .trace, .lower or .eval_shape, or call with an array")
            if _leaf_key(x) is None:
                raise TypeError(f"jit({self._name}): argument '{name}{path_str(path)}' of type "
                                f"{type(x).__name__} is not a valid array type: {x!r}. Mark it "
                                "static with static_argnums/static_argnames.")
        arg_names = [f"'{name}{path_str(path)}'" for name, path in paths]
        labels = [f"argument {n}" for n in arg_names]
        in_avals = [_leaf_aval(x) for x in leaves]
        description = [_Part("type", n, f"{a.str_short()}{' (weak)' if a.weak_type else ''}")
                       for n, a in zip(arg_names, in_avals)] + \
                      [_Part("static", f"'{s[1] if s[0] == 'kw' else self._arg_name(s[1])}'",
                             repr(s[2][1])) for s in statics] + _context_parts()
        if config.log_compiles or config.explain_cache_misses:
            self._log_miss(treedef, description)
        refs = jit_refs.JitRefs(f"jit({self._name})", leaves, jit_refs.ref_positions(leaves))
        with monitoring.timed_event(monitoring.JAXPR_TRACE_EVENT, self._name):
            closed, out_tree, hoisted = self._trace(args, kwargs, static_nums, treedef, in_avals,
                                                    labels, refs)
        if config.debug_key_reuse:  # a key consumed twice inside: KeyReuseError, at trace time
            key_reuse.check_jaxpr(closed)
        donated = [self._is_donated(a, len(args)) for a, _ in origins]
        entry = _Entry(closed, treedef, out_tree, in_avals, tuple(donated), self._name, hoisted,
                       description)
        entry.args_only = self._simple and not kwargs
        entry.refs = refs if refs.used else None
        # Uncommitted host (NumPy) arguments run the executable directly when the default
        # device is a CPU; others bind jit_p, whose impl compiles for their backend.
        entry.direct = not hoisted and not refs.used and \
            all(len(k) == 3 for k in map(_leaf_key, leaves) if isinstance(k, tuple)) and \
            (backends.host_default or backends.refresh_default())
        if compile and entry.direct:
            entry.executable()
        if not hoisted and not any(type(x) is ShapeDtypeStruct for x in leaves):
            self._cache[key] = entry
        if config.log_compiles:
            logger.warning("Finished tracing and compiling %s in %.1f ms", self._name,
                           (time.perf_counter() - start) * 1e3)
        return entry

    def _is_donated(self, origin: int | str, nargs: int) -> bool:
        """Whether the argument at position (int) or keyword (str) ``origin`` is donated."""
        if isinstance(origin, str):
            return origin in self._donate_names
        return any(n % nargs == origin for n in self._donate_nums if -nargs <= n < nargs) or \
            self._arg_name(origin) in self._donate_names

    def _trace(self, args: tuple, kwargs: dict, static_nums: tuple, treedef: Any,
               in_avals: list, labels: list, refs: jit_refs.JitRefs
               ) -> tuple[ClosedJaxpr, Any, list]:
        store = {}
        simple = self._simple and not kwargs

        def flat_fun(*tracers: Any) -> list:
            try:  # Ref arguments and the outer refs the function uses are threaded (jit_refs)
                return refs.outputs(fun_leaves(refs.enter(tracers)), tracers)
            finally:
                refs.exit()

        def fun_leaves(tracers: Sequence[Any]) -> list:
            if simple:
                call_args, call_kwargs = tree_util.unflatten(treedef, tracers), {}
            else:
                dyn_args, dyn_kwargs = tree_util.unflatten(treedef, tracers)
                it = iter(dyn_args)
                call_args = [args[i] if i in static_nums else next(it) for i in range(len(args))]
                call_kwargs = {k: kwargs[k] if k in self._static_names else dyn_kwargs[k]
                               for k in kwargs}
            out = refs.checked(self._fun(*call_args, **call_kwargs))
            out_leaves, store["tree"] = _flat_outputs(out, f"jit({self._name})")
            return out_leaves
        jaxpr, consts, _ = pe.trace_to_jaxpr(flat_fun, in_avals, name="jit", labels=labels)
        traced = [isinstance(c, Tracer) for c in consts]
        if not any(traced):
            return ClosedJaxpr(jaxpr, consts), store["tree"], []
        # Closed-over tracers of enclosing transformations become leading operands.
        hoisted = [c for c, t in zip(consts, traced) if t]
        constvars = [v for v, t in zip(jaxpr.constvars, traced) if not t]
        hoisted_vars = [v for v, t in zip(jaxpr.constvars, traced) if t]
        closed = ClosedJaxpr(Jaxpr(constvars, hoisted_vars + jaxpr.invars, jaxpr.outvars,
                                   jaxpr.eqns), [c for c, t in zip(consts, traced) if not t])
        return closed, store["tree"], hoisted

    def _log_miss(self, treedef: Any, description: list[_Part]) -> None:
        """Log why the cache missed: with ``log_compiles`` on one line with the signature,
        with ``explain_cache_misses`` as JAX's "TRACING CACHE MISS" report, naming the call
        site and the differences from the closest cached signature."""
        sections = None if not self._cache else min(
            (_explain(treedef, description, old) for old in self._cache.values()),
            key=lambda r: r[0])[1]
        if config.log_compiles:
            reason = "never seen this function (first compilation)" if sections is None else \
                "; ".join(f"{h}: {', '.join(items)}" if items else h for h, items in sections)
            logger.warning("Compiling %s for signature (%s); cache miss because: %s",
                           self._name, ", ".join(map(str, description)), reason)
        if config.explain_cache_misses:
            logger.warning("%s", _miss_report(self._fun, self._name, sections))

    # -- staging API (arguments may be ``ShapeDtypeStruct``s)
    def trace(self, *args: Any, **kwargs: Any) -> "Traced":
        """Trace for these arguments (``jax.stages.Traced``): ``.jaxpr``, ``.out_info``
        (the output's shapes and dtypes) and ``.lower()``."""
        key, leaves = self._key(args, kwargs)
        entry = self._cache.get(key) or self._entry(args, kwargs, key, leaves, compile=False)
        committed = [x._device for x in leaves if type(x) is Array and x._device is not None]
        return Traced(entry, committed[0] if committed else backends.default_device())

    def lower(self, *args: Any, **kwargs: Any) -> "Lowered":
        """Trace for these arguments; ``.as_text()`` shows the optimised IR (the CUDA
        source of its kernels when the arguments' device is a GPU), ``.compile()``
        returns the executable."""
        return self.trace(*args, **kwargs).lower()

    def eval_shape(self, *args: Any, **kwargs: Any) -> Any:
        """The output's shapes and dtypes as ``ShapeDtypeStruct``s, without running it."""
        return self.trace(*args, **kwargs).out_info

    def _cache_size(self) -> int:
        """How many signatures have been compiled (as ``jax``'s ``_cache_size``)."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every compiled signature."""
        self._cache.clear()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"<jitted function {self._name}>"


def refuse_execution(refuse: bool) -> None:
    """With ``refuse``, every call of a compiled function goes through ``jit_p``'s bind, so
    that the eager trace, told to refuse (``fungrad.no_execution``), refuses it too, or
    checks the keys it consumes (``fungrad.debug_key_reuse``); without
    it calls take the direct path again. The method is swapped rather than a flag tested in
    the direct path, which therefore costs nothing more."""
    _Entry.call = _Entry.call_bound if refuse else _Entry._call_any


def record_calls(span: Callable[[str], ContextManager] | None) -> None:
    """Run every call of a jitted function inside ``span("jit(<name>)")``, a context manager
    (how ``fungrad.profiler`` records the calls while it traces), or, with None, run calls as
    usual again. The call method is swapped rather than a flag tested in it, so that calls
    cost nothing more while nothing records."""
    if span is None:
        JitWrapped.__call__ = JitWrapped._call_unrecorded
        return

    def recorded(self: JitWrapped, *args: Any, **kwargs: Any) -> Any:
        with span(f"jit({self._name})"):
            return self._call_unrecorded(*args, **kwargs)
    JitWrapped.__call__ = recorded


class _Part(NamedTuple):
    """One part of a call's signature, as the cache-miss explanations name it."""
    kind: str  # "type" (an array argument's), "static" (a static argument's value), "context"
    label: str  # "'x'", "'params['w']'", "'n'", "default device", "user context #0"
    value: str  # "f32[3]", "f32[] (weak)", "2", "None"

    def __str__(self) -> str:
        if self.kind == "type":
            return f"{self.label}: {self.value}"
        return f"{'static ' if self.kind == 'static' else ''}{self.label} = {self.value}"


def _context_parts() -> list[_Part]:
    """The settings besides the arguments that a cache key holds (``config.trace_context``)."""
    return ([_Part("context", "default device", str(config.default_device)),
            _Part("context", "enable_x64", str(config.enable_x64)),
            _Part("context", "numpy_dtype_promotion", config.numpy_dtype_promotion),
            _Part("context", "numpy_rank_promotion", config.numpy_rank_promotion)] + [
        _Part("context", "debug_key_reuse", "True")] if config.debug_key_reuse else []) + [
        _Part("context", f"user context #{i}", repr(v))
        for i, v in enumerate(config.user_contexts)]


_HEADINGS = {"context": "different tracing context (a config setting or context manager)",
             "type": "different input types", "static": "different static arguments"}


def _explain(treedef: Any, new: list[_Part], old: _Entry
             ) -> tuple[tuple[int, int, int], list[tuple[str, list[str]]]]:
    """How a new signature differs from a cached one: ``(rank, sections)``, each section a
    heading and the differences under it. The lowest rank is the closest cached signature:
    a different pytree ranks after different types or values, and among those, fewer parts
    present on one side only, then fewer changed parts, come first."""
    if treedef != old.in_tree:
        now = {p.label for p in new if p.kind == "type"}
        before = {p.label for p in old.description if p.kind == "type"}
        lines = [f"now {treedef} and before {old.in_tree}"]
        lines += [f"only now: {p}" for p in new if p.kind == "type" and p.label not in before]
        lines += [f"only before: {p}" for p in old.description
                  if p.kind == "type" and p.label not in now]
        return (2, len(lines), 0), [("different input pytree", lines)]
    sections, one_sided, changed = [], 0, 0
    for kind in ("context", "type", "static"):
        now = {p.label: p for p in new if p.kind == kind}
        before = {p.label: p for p in old.description if p.kind == kind}
        lines = [f"{p} (before: {before[label].value})" + _weak_hint(p, before[label])
                 for label, p in now.items() if label in before and p != before[label]]
        sided = [f"only now: {p}" for label, p in now.items() if label not in before] + \
            [f"only before: {p}" for label, p in before.items() if label not in now]
        changed, one_sided = changed + len(lines), one_sided + len(sided)
        lines += sided
        if lines:
            sections.append((_HEADINGS[kind], lines))
    if not sections:
        return (3, 0, 0), [("cache miss explanation unavailable", [])]
    return (1, one_sided, changed), sections


def _weak_hint(now: _Part, before: _Part) -> str:
    """JAX's hint where only an argument's weak type changed."""
    same = now.value.replace(" (weak)", "") == before.value.replace(" (weak)", "")
    return ("; only the weak type differs: a Python scalar is weakly typed, an array is not "
            "(https://docs.jax.dev/en/latest/type_promotion.html#weak-types)") if same else ""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MISSED_AT: set[str] = set()  # call sites where a function never seen before was traced


def _call_site() -> str:
    """``file:line (function)`` of the innermost frame outside fungrad: the user's call."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"


def _defined_at(fun: Callable) -> str:
    """`` defined at file:line`` of a Python function (through wrappers and partials)."""
    fun = inspect.unwrap(fun)
    code = getattr(getattr(fun, "func", fun), "__code__", None)
    return "" if code is None else f" defined at {code.co_filename}:{code.co_firstlineno}"


def _miss_report(fun: Callable, name: str,
                 sections: list[tuple[str, list[str]]] | None) -> str:
    """JAX's ``explain_cache_misses`` report: where the call was, and either that the
    function was never seen (with a hint when another one was first traced at the same
    call site: a function re-created on every call is never found in the cache) or the
    differences from the closest cached signature."""
    site = _call_site()
    lines = [f"TRACING CACHE MISS at {site}:"]
    if sections is None:
        lines += ["  never seen function:", f"    {name} id={id(fun)}{_defined_at(fun)}"]
        if site in _MISSED_AT:
            lines.append("  but seen another function defined on the same line; maybe the "
                         "function is\n  being re-defined repeatedly, preventing caching?")
        _MISSED_AT.add(site)
        return "\n".join(lines)
    lines += [f"  for {name}{_defined_at(fun)}",
              "  all previously seen cache keys differ. For the closest previous key:"]
    for heading, items in sections:
        lines.append(f"  {heading}:")
        lines += [f"  * {item}" for item in items]
    return "\n".join(lines)


_shared_caches: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _shared_cache(fun: Callable, options: tuple) -> dict:
    """``jit(f)`` twice shares one cache (keyed weakly by ``f``), as in JAX."""
    try:
        per_fun = _shared_caches.setdefault(fun, {})
    except TypeError:  # not weakly referenceable
        return {}
    return per_fun.setdefault(options, {})


DIALECTS = ("jaxpr", "cuda")


def _program_text(entry: _Entry, dialect: str) -> str:
    """The optimised program of ``entry`` as the CPU runs it (``"jaxpr"``: fused kernels
    by name) or as a GPU runs it (``"cuda"``: the GPU fuser's program, then the CUDA source
    of every kernel; generated without CuPy or a GPU)."""
    if dialect == "cuda":
        return cuda_fuse.cuda_text(passes.optimize(entry.closed))
    return entry.executable().as_text()


def _check_dialect(dialect: str | None, device: backends.Device) -> str:
    if dialect is None:
        return "cuda" if device.platform == "gpu" else "jaxpr"
    if dialect not in DIALECTS:
        raise ValueError(f"as_text: unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    return dialect


# ``jax.stages.CompilerOptions``: XLA's options by name (accepted; they change nothing here)
CompilerOptions = dict[str, str | bool]


class CompiledMemoryStats(NamedTuple):
    """``Compiled.memory_analysis()``: the bytes an executable's buffers take, by role
    (the fields of XLA's ``CompiledMemoryStats`` that apply to a NumPy program)."""
    argument_size_in_bytes: int  # the arguments
    output_size_in_bytes: int  # the results
    alias_size_in_bytes: int  # donated arguments a result of their shape and dtype can reuse
    temp_size_in_bytes: int  # the intermediate values (an upper bound: each is freed when dead)
    generated_code_size_in_bytes: int  # the generated Python source


def _nbytes(avals: Iterable[ShapedArray]) -> int:
    return sum(a.size * a.dtype.itemsize for a in avals)


def _aliasable(entry: _Entry) -> list[ShapedArray]:
    """The donated arguments whose buffers results can take over: each needs a result of
    its shape and dtype, not taken by another (as XLA aliases donated buffers)."""
    free = collections.Counter((a.shape, a.dtype) for a in entry.closed.out_avals)
    taken = []
    for aval, donated in zip(entry.in_avals, entry.donated):
        if donated and free[aval.shape, aval.dtype]:
            free[aval.shape, aval.dtype] -= 1
            taken.append(aval)
    return taken


class _Stage:
    """A jitted function at one signature, for the device its arguments run on (committed
    arguments' device, else the default)."""

    def __init__(self, entry: _Entry, device: backends.Device) -> None:
        self._entry = entry
        self.device = device

    @property
    def jaxpr(self) -> ClosedJaxpr:
        """The traced (unoptimised) jaxpr."""
        return self._entry.closed

    @property
    def out_info(self) -> Any:
        """The output's pytree of ``ShapeDtypeStruct``s."""
        out_tree = self._entry.out_tree  # (the refs' final values follow the results)
        return tree_util.unflatten(out_tree, [
            ShapeDtypeStruct(a.shape, a.dtype, a.weak_type)
            for a in self._entry.closed.out_avals[:out_tree.num_leaves]])

    @property
    def args_info(self) -> Any:
        """The ``(args, kwargs)`` pytree of ``ArgInfo`` (type and donation) of the dynamic
        arguments, static ones left out, as ``jax.stages.Lowered.args_info``."""
        e = self._entry
        info = make_args_info(e.in_tree, e.in_avals, e.donated)
        return (info, {}) if e.args_only else info

    def cost_analysis(self) -> None:
        """XLA's estimate of flops and bytes accessed; None, as JAX returns where a backend
        has no cost model: fungrad's compiler has none."""
        return None


class Traced(_Stage):
    """A jitted function traced at one signature, before optimisation."""

    def lower(self) -> "Lowered":
        """The optimised program (see ``Lowered``)."""
        return Lowered(self._entry, self.device)


class Lowered(_Stage):
    """The traced and optimised form of a jitted function at one signature."""

    def as_text(self, dialect: str | None = None) -> str:
        """The optimised program, as ``jax.stages.Lowered.as_text``: ``dialect="jaxpr"`` is
        the IR the CPU runs (fused kernels by name), ``"cuda"`` the GPU's program followed
        by the CUDA source of each kernel. The default is the device's: ``"cuda"`` on a
        GPU, else ``"jaxpr"``; ask for ``"cuda"`` to read the kernels on a CPU machine."""
        return _program_text(self._entry, _check_dialect(dialect, self.device))

    def compile(self, compiler_options: CompilerOptions | None = None) -> "Compiled":
        """The executable (compiled now if it was not yet); ``compiler_options`` are XLA's,
        accepted for JAX's signature."""
        return Compiled(self._entry, self.device)


class Compiled(_Stage):
    """An executable for one signature. Call it with the dynamic arguments only."""

    def __init__(self, entry: _Entry, device: backends.Device) -> None:
        super().__init__(entry, device)
        self._exe = entry.executable()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves, treedef = tree_util.flatten(args)
        if treedef != self._entry.in_tree:
            leaves, treedef = tree_util.flatten((args, kwargs))
        if treedef != self._entry.in_tree:
            raise TypeError(f"compiled {self._entry.name}: the arguments' pytree structure "
                            f"{treedef} does not match the compiled one {self._entry.in_tree}")
        avals = [_leaf_aval(x) for x in leaves]
        expected = self._entry.in_avals
        if len(avals) != len(expected) or any(a.shape != b.shape or a.dtype != b.dtype
                                              for a, b in zip(avals, expected)):
            raise TypeError(f"compiled {self._entry.name}: called with "
                            f"{[a.str_short() for a in avals]} but compiled for "
                            f"{[a.str_short() for a in expected]}")
        if any(isinstance(x, Tracer) for x in leaves):
            raise TypeError("Cannot apply transformations to a function lowered and compiled "
                            "for a particular signature (got a tracer argument).")
        return self._entry.call(leaves)

    def as_text(self) -> str:
        """The optimised program this executable runs on its device (with the CUDA source
        of the kernels on a GPU, as ``Lowered.as_text``)."""
        return _program_text(self._entry, _check_dialect(None, self.device))

    @property
    def source(self) -> str:
        """The generated Python source."""
        return self._exe.source

    def memory_analysis(self) -> CompiledMemoryStats:
        """The bytes the executable's arguments, results, donated arguments and intermediate
        values take, and the size of its generated source (``jax.stages.Compiled``'s)."""
        entry, program = self._entry, self._exe.jaxpr.jaxpr
        outputs = {id(v) for v in program.outvars}
        return CompiledMemoryStats(
            argument_size_in_bytes=_nbytes(entry.in_avals),
            output_size_in_bytes=_nbytes(entry.closed.out_avals),
            alias_size_in_bytes=_nbytes(_aliasable(entry)),
            temp_size_in_bytes=_nbytes(v.aval for e in program.eqns for v in e.outvars
                                       if id(v) not in outputs),
            generated_code_size_in_bytes=len(self._exe.source.encode()))


class _PlacedJit(JitWrapped):
    """A ``jit`` function with ``in_shardings``/``out_shardings`` (or ``device``/``backend``):
    its arguments and results are put on those devices around the call."""

    def __init__(self, fun: Callable, statics: tuple, in_shardings: Any,
                 out_shardings: Any) -> None:
        super().__init__(fun, *statics)
        self._in_shardings, self._out_shardings = in_shardings, out_shardings

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._in_shardings is not None:
            args = _placed(args, self._in_shardings, "in_shardings", self._name)
        out = super().__call__(*args, **kwargs)
        if self._out_shardings is None:
            return out
        if isinstance(self._out_shardings, (tuple, list)) and isinstance(out, (tuple, list)):
            return type(out)(_placed(tuple(out), self._out_shardings, "out_shardings",
                                     self._name))
        return _placed((out,), (self._out_shardings,), "out_shardings", self._name)[0]


def _placed(values: tuple, shardings: Any, what: str, name: str) -> tuple:
    """``values`` put on ``shardings``: one device (or ``SingleDeviceSharding``) for all, or
    a tuple or list with one (or None, to leave a value where it is) per value."""
    if not isinstance(shardings, (tuple, list)):
        return device_put(values, shardings)
    if len(shardings) != len(values):
        raise ValueError(f"jit({name}): {what} has {len(shardings)} entries for "
                         f"{len(values)} {'arguments' if what == 'in_shardings' else 'results'}")
    return tuple(v if s is None else device_put(v, s) for v, s in zip(values, shardings))


def jit(fun: Callable | None = None, /, *, in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: int | Sequence[int] = (), static_argnames: str | Sequence[str] = (),
        donate_argnums: int | Sequence[int] = (), donate_argnames: str | Sequence[str] = (),
        keep_unused: bool = False, device: Any = None, backend: str | None = None,
        inline: bool = False, compiler_options: dict | None = None) -> Any:
    """Compile ``fun``: trace it once per abstract signature into a jaxpr, optimise it and
    generate a Python function that calls the backend directly (as ``jax.jit``).

    Args:
      fun: a pure function of arrays (pytrees of arrays) returning arrays.
      in_shardings / out_shardings: where the arguments and results go: one device (or
        ``SingleDeviceSharding``, ``"gpu"``) for all, or a tuple with one (or None) per
        positional argument / per result (a tuple or list result). One process holds one
        device per array here, so there is nothing to shard across.
      static_argnums / static_argnames: arguments treated as compile-time constants
        (hashable; each new value compiles again). Use them for shapes, flags, configs.
      donate_argnums / donate_argnames: arguments whose buffers the computation may
        reuse for its outputs (the donated arrays are deleted), e.g. a KV cache
        updated in place.
      device / backend: JAX's older placement: the device, or the default device of the
        backend (``"cpu"``, ``"gpu"``), for arguments and results alike.
      keep_unused / inline / compiler_options: accepted for JAX's signature; they change no
        value here (fungrad's compiler has no XLA options, and a jitted function called
        inside another is traced into it).

    Usable as ``@jit``, ``@functools.partial(jit, static_argnums=...)`` or ``jit(f)``.

    Example:
      >>> import fungrad, fungrad.numpy as jnp
      >>> f = fungrad.jit(lambda x: jnp.sin(x) * 2.0)
      >>> f(jnp.ones(3)).shape
      (3,)
    """
    options = dict(in_shardings=in_shardings, out_shardings=out_shardings,
                   static_argnums=static_argnums, static_argnames=static_argnames,
                   donate_argnums=donate_argnums, donate_argnames=donate_argnames,
                   keep_unused=keep_unused, device=device, backend=backend, inline=inline,
                   compiler_options=compiler_options)
    if fun is None:
        return functools.partial(jit, **options)
    del keep_unused, inline, compiler_options  # see the docstring
    statics = (static_argnums, static_argnames, donate_argnums, donate_argnames)
    if device is not None or backend is not None:
        if in_shardings is not None or out_shardings is not None or (device and backend):
            raise ValueError(f"jit({_fun_name(fun)}): pass one of device, backend and "
                             "in_shardings/out_shardings")
        in_shardings = out_shardings = device if device is not None else backend
    if in_shardings is None and out_shardings is None:
        return JitWrapped(fun, *statics)
    return _PlacedJit(fun, statics, in_shardings, out_shardings)


@contextlib.contextmanager
def disable_jit(disable: bool = True) -> Iterator[None]:
    """Run jitted functions op by op inside this context (for debugging with ``print``)."""
    prev = config.disable_jit
    config.disable_jit = disable
    try:
        yield
    finally:
        config.disable_jit = prev
