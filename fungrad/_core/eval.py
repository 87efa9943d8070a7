"""Eager evaluation: the trace at the bottom of every stack.

``EvalTrace.process_primitive`` unwraps ``Array`` buffers, runs the primitive's
backend implementation and wraps the result. It is the eager hot path, so it
does as little as possible: no abstract evaluation, and NumPy errors turned into
errors that name the primitive (allocation failures into ``ResourceExhaustedError``).
The array module is NumPy unless a device buffer (CuPy) is among the operands; host
operands then follow it to its device. Operands committed to a device (``device_put``)
take the computation there and commit its results; committed operands on two devices
are an error. Operations on host values alone run on the default device.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import backends
from fungrad._core import core, dtypes, fpstate
from fungrad._core.array import Array
from fungrad._core.core import Primitive, Tracer
from fungrad.backends.namespace import impl_for
from fungrad.config import config
from fungrad.errors import MissingRuleError, ResourceExhaustedError, UnexpectedTracerError

_ndarray = np.ndarray


def _describe(args: Sequence[Any]) -> str:
    return ", ".join(core.get_aval(a).str_short() if not isinstance(a, (int, float, bool, complex))
                     else repr(a) for a in args)


def _raise_clear_error(prim: Primitive, args: Sequence[Any], params: dict, err: Exception) -> None:
    """Turn a backend error into the error the shape/dtype rule gives, which names the
    primitive and the offending shapes/dtypes; fall back to wrapping the backend's."""
    if prim.abstract_eval is not None:
        prim.abstract_eval(*[core.get_aval(a) for a in args], **params)
    raise type(err)(f"{prim}: invalid arguments ({_describe(args)}) with "
                    f"{params or 'no params'}: {err}") from err


def _raise_out_of_memory(prim: Primitive, args: Sequence[Any], params: dict,
                         err: MemoryError) -> None:
    """Re-raise an allocation failure as ``ResourceExhaustedError`` naming the primitive and the
    shape and dtype it asked for: NumPy's error carries them, else they are the result's."""
    if isinstance(err, ResourceExhaustedError) or prim.abstract_eval is None:
        raise err
    shape, dtype = getattr(err, "shape", None), getattr(err, "dtype", None)
    if shape is None or dtype is None:
        out = prim.abstract_eval(*[core.get_aval(a) for a in args], **params)
        out = max(out, key=lambda a: a.size) if isinstance(out, (list, tuple)) else out
        shape, dtype = out.shape, out.dtype
    raise ResourceExhaustedError(str(prim), tuple(shape), dtype) from err


def _on_device(vals: list, device_buffer: Any) -> tuple[Any, list]:
    """The array module of ``device_buffer`` and ``vals`` with every host value moved to
    its device. Host values are uncommitted, as in JAX: constants that ``full``, ``iota``
    or a gradient's seed made on the host follow the device array they meet."""
    return backends.xp_of(device_buffer), [
        backends.to_device_of(v, device_buffer) if backends.is_host(v) else v for v in vals]


def _committed_device(prim: Primitive, args: Sequence[Any], device: backends.Device,
                      committed: backends.Device | None) -> backends.Device:
    """``device``, an operand's committed device, checked against the one found before."""
    if committed is not None and device is not committed and device != committed:
        raise backends.incompatible_devices(str(prim), backends.argument_labels(len(args)), args)
    return device


class EvalTrace(core.Trace):
    name = "eval"

    def __init__(self) -> None:
        super().__init__(None)

    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        vals, all_weak, device_buffer, committed, scalars = [], True, None, None, 0
        for a in args:
            if type(a) is Array:
                v = a._value
                vals.append(v)
                all_weak = all_weak and a.weak_type
                if a._device is not None:
                    committed = _committed_device(prim, args, a._device, committed)
                if type(v) is not _ndarray and device_buffer is None and not backends.is_host(v):
                    device_buffer = v
            elif isinstance(a, Tracer):
                raise UnexpectedTracerError(a, f"It reached eager evaluation of {prim}. ")
            else:  # a raw buffer or Python scalar (weak when a Python number)
                vals.append(a)
                scalar = isinstance(a, (int, float, complex))  # bool included
                scalars += scalar
                all_weak = all_weak and scalar and not isinstance(a, bool)
                if device_buffer is None and not backends.is_host(a):
                    device_buffer = a
        if scalars and scalars == len(vals):  # Python scalars alone: NumPy would compute in
            # float64 or int64 where JAX gives the weak canonical dtype (float32, int32)
            vals = [np.asarray(v, dtypes.dtype_and_weak(v)[0]) for v in vals]
        impl = prim.impl
        if impl is None:
            raise MissingRuleError(prim, "implementation")
        xp = np
        if committed is not None:
            if committed.platform != "cpu":
                xp, vals = backends.all_to_device(vals, committed)
        elif device_buffer is not None:
            xp, vals = _on_device(vals, device_buffer)
        elif not backends.host_default and not backends.refresh_default():
            xp, vals = backends.all_to_device(vals, backends.default_device())
        if xp is not np and vals and all(getattr(v, "dtype", None) == dtypes.float0
                                         for v in vals):
            xp = np  # float0 (tangents of integers) holds no data and stays on the host
        if xp is not np:
            impl = impl_for(xp, prim.name, impl)
        errors = fpstate.STATE.set(fpstate.IGNORE)  # infs and nans pass silently, as in JAX
        try:
            out = impl(xp, *vals, **params)
        except (ValueError, TypeError, IndexError) as e:
            _raise_clear_error(prim, args, params, e)
        except MemoryError as e:
            _raise_out_of_memory(prim, args, params, e)
        finally:
            fpstate.STATE.reset(errors)
        if config.debug_nans or config.debug_infs:
            fpstate.check_results(prim.name, out if prim.multiple_results else [out])
        rule = prim.weak_type_rule
        weak = all_weak if rule is core.all_weak else rule(
            [getattr(a, "weak_type", isinstance(a, (int, float, complex))) for a in args], **params)
        if prim.multiple_results:
            if isinstance(weak, (list, tuple)):  # one flag per result (control flow)
                return [Array(o, w, committed) for o, w in zip(out, weak)]
            return [Array(o, weak, committed) for o in out]
        return Array(out, weak, committed)


EVAL_TRACE = EvalTrace()
core._ctx.trace = EVAL_TRACE
