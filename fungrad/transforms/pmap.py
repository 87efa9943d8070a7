"""``pmap``: ``jax.pmap``, one member of the mapped axis per device, on fungrad's devices.

fungrad arrays live wholly on one device, so ``pmap(f)`` is ``jit(vmap(f, axis_name=...))``:
one compiled program computes every member of the mapped axis (where ``jit`` would run it:
on the device of its committed arguments, else the default device), collectives over
``axis_name`` (``lax.psum``, ``pmean``, ``all_gather``, ``ppermute``, ``axis_index``, ...) are
those of ``vmap``, and the results are whole arrays committed to the first of the pmap's
devices, where JAX returns arrays sharded over them. What JAX checks about devices is
checked the same way: the mapped axis may not have more members than there are devices
(``devices``, else ``fungrad.local_device_count()``; for nested pmaps, the product of their
sizes), which ``FUNGRAD_NUM_CPU_DEVICES`` raises on a CPU-only machine.
"""
from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from fungrad import backends
from fungrad import tree as tree_util
from fungrad._core.array import device_put
from fungrad.lax.parallel import pbroadcast
from fungrad.transforms.api import _fun_name, check_argnums, check_callable, vmap
from fungrad.transforms.jit import jit

# The product of the sizes of the pmaps being traced around this point: a pmap nested in
# them needs that many devices times its own size.
_ENCLOSING = contextvars.ContextVar("pmap_enclosing_size", default=1)


def _check_axes_spec(spec: Any, what: str) -> None:
    if any(type(ax) is not int for ax in tree_util.leaves(spec)):
        raise TypeError(f"pmap {what} must be an int, None, or (nested) container with those "
                        f"types as leaves, but got {spec}.")


def _split_static(args: tuple, statics: tuple[int, ...], in_axes: Any
                  ) -> tuple[list, Any, Callable[[Sequence], list]]:
    """The non-static arguments, their ``in_axes``, and a function that puts the static
    arguments back among (new values of) the non-static ones."""
    static = {i % len(args) for i in statics}
    dynamic = [a for i, a in enumerate(args) if i not in static]
    if isinstance(in_axes, tuple):
        in_axes = tuple(ax for i, ax in enumerate(in_axes) if i not in static)

    def merged(values: Sequence) -> list:
        rest = iter(values)
        return [a if i in static else next(rest) for i, a in enumerate(args)]
    return dynamic, in_axes, merged


def _mapped_size(args: list, in_axes: Any, kwargs: dict) -> int:
    """The size of the mapped axis, read from the first mapped argument (``vmap`` checks that
    the others agree)."""
    prefix = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    axes = tree_util.broadcast_prefix(prefix, tuple(args), "pmap in_axes")
    leaves = tree_util.leaves(tuple(args)) + tree_util.leaves(kwargs)
    for x, ax in zip(leaves, axes + [0] * (len(leaves) - len(axes))):  # keywords: axis 0
        if ax is not None:
            shape = np.shape(x)
            if not -len(shape) <= ax < len(shape):
                raise ValueError(f"pmap was requested to map its argument along axis {ax}, "
                                 f"which implies that its rank should be at least "
                                 f"{ax + 1 if ax >= 0 else -ax}, but is only {len(shape)} (its "
                                 f"shape is {shape})")
            return shape[ax]
    raise ValueError("pmap requires at least one argument with a mapped axis.")


def _check_size(fname: str, size: int, axis_size: int | None, available: int) -> None:
    """JAX's checks on the mapped axis: ``axis_size`` if given, and one device per member
    (for nested pmaps, per member of the product of their axes)."""
    if axis_size is not None and axis_size != size:
        raise ValueError(f"Specified axis_size {axis_size} doesn't match received axis_size "
                         f"{size}.")
    outer = _ENCLOSING.get()
    if outer * size > available:
        nested = f" inside pmaps of {outer} members in all" if outer > 1 else ""
        raise ValueError(f"pmap({fname}): compiling computation that requires {outer * size} "
                         f"logical devices, but only {available} devices are available: the "
                         f"mapped axis has size {size}{nested}, and pmap runs one member per "
                         "device (FUNGRAD_NUM_CPU_DEVICES sets the number of CPU devices)")


def _from_first_member(out: Any, out_axes: Any, axis_name: Any) -> Any:
    """``out`` with each output whose ``out_axes`` entry is None replaced by the value of
    the axis's first member (the device JAX reads such an output from)."""
    axes = tree_util.broadcast_prefix(out_axes, out, "pmap out_axes", of="the function's outputs")
    leaves, treedef = tree_util.flatten(out)
    return tree_util.unflatten(treedef, [x if ax is not None else pbroadcast(x, axis_name, 0)
                                         for x, ax in zip(leaves, axes)])


def pmap(fun: Callable, axis_name: Any = None, *, in_axes: Any = 0, out_axes: Any = 0,
         static_broadcasted_argnums: int | Iterable[int] = (),
         devices: Sequence[backends.Device] | None = None, backend: str | None = None,
         axis_size: int | None = None, donate_argnums: int | Iterable[int] = ()) -> Callable:
    """Map ``fun`` over an axis of its arguments, one member per device (``jax.pmap``).

    Semantically a ``vmap`` whose axis needs a device per member: ``fun`` runs once per
    member, collectives over ``axis_name`` combine the members, and the results are stacked
    along ``out_axes``. Here the whole map is one ``jit`` program of ``vmap(fun)``, so it
    composes with ``grad``, ``vmap``, ``jit`` and other pmaps as a vmap does; its results
    are whole arrays committed to the first device of ``devices`` (JAX's are sharded
    over them).

    Args:
      fun: the function to map, of arrays (pytrees of arrays) and, at the
        ``static_broadcasted_argnums`` positions, of any hashable values.
      axis_name: the name collectives use for the mapped axis (any hashable).
      in_axes / out_axes: the mapped axis of each positional argument and of each output,
        as ``vmap``'s (keyword arguments are mapped over their leading axis). An output
        with ``out_axes`` None is the first member's value.
      static_broadcasted_argnums: positional arguments passed to every member unchanged
        and compiled in as constants (hashable; each new value compiles again).
      devices: the devices to map over (default: those of ``backend``); the mapped axis
        may have at most this many members.
      backend: the platform whose devices are used (``"cpu"``, ``"gpu"``).
      axis_size: the expected size of the mapped axis (a ``ValueError`` if it differs).
      donate_argnums: arguments whose buffers the computation may reuse, as ``jit``'s.

    Returns:
      The mapped function, with ``fun``'s arguments plus the mapped axes.

    Raises:
      ValueError: the mapped axis has more members than there are devices (``devices``, or
        those of ``backend``; for nested pmaps, the product of their sizes), no argument is
        mapped, or the size differs from ``axis_size``.

    Examples:
      >>> import fungrad, fungrad.numpy as jnp
      >>> from fungrad import lax
      >>> n = fungrad.local_device_count()
      >>> normalise = fungrad.pmap(lambda x: x / lax.psum(x, "i"), axis_name="i")
      >>> float(normalise(jnp.arange(1.0, n + 1)).sum())
      1.0
    """
    check_callable(fun, "pmap")
    in_axes = tuple(in_axes) if isinstance(in_axes, list) else in_axes
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if devices is not None and not devices:
        raise ValueError("'devices' argument to pmap must be non-empty, or None.")
    statics = check_argnums(static_broadcasted_argnums, "pmap", "static_broadcasted_argnums",
                            allow_empty=True)
    name = object() if axis_name is None else axis_name  # an axis no collective can name
    fname = _fun_name(fun)

    @functools.wraps(fun)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        dynamic, dynamic_axes, merged = _split_static(args, statics, in_axes)

        @functools.wraps(fun)  # vmap's errors name ``fun``
        def member(*values: Any, **kw: Any) -> Any:
            return _from_first_member(fun(*merged(values), **kw), out_axes, name)
        return vmap(member, dynamic_axes, out_axes, axis_name=name)(*dynamic, **kwargs)

    compiled = jit(mapped, static_argnums=statics, donate_argnums=donate_argnums)

    @functools.wraps(fun)
    def pmapped(*args: Any, **kwargs: Any) -> Any:
        if statics and max(statics) >= len(args):
            raise ValueError(f"pmapped function has static_broadcasted_argnums={statics} but "
                             f"was called with only {len(args)} positional argument"
                             f"{'s' if len(args) > 1 else ''}. All static broadcasted "
                             "arguments must be passed positionally.")
        dynamic, dynamic_axes, _ = _split_static(args, statics, in_axes)
        size = _mapped_size(dynamic, dynamic_axes, kwargs)
        targets = list(devices) if devices is not None else backends.devices(backend)
        _check_size(fname, size, axis_size, len(targets))
        token = _ENCLOSING.set(_ENCLOSING.get() * size)
        try:
            out = compiled(*args, **kwargs)
        finally:
            _ENCLOSING.reset(token)
        return device_put(out, targets[0])
    return pmapped
