"""Function-lifting helpers built on ``vmap``: ``vectorize`` (with gufunc signatures),
``apply_along_axis``, ``apply_over_axes`` and ``piecewise``."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import lax
from fungrad.numpy._reductions import argmax
from fungrad.numpy._shape import expand_dims
from fungrad.numpy._util import aval, broadcast_to, canonicalize_axis, ensure_arraylike
from fungrad.transforms.api import vmap

_DIMS = r"\(\s*(?:\w+(?:\s*,\s*\w+)*)?\s*\)"
_SIGNATURE = re.compile(rf"^{_DIMS}(?:\s*,\s*{_DIMS})*\s*->\s*{_DIMS}(?:\s*,\s*{_DIMS})*$")


def _parse_signature(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    if not _SIGNATURE.match(signature):
        raise ValueError(f"vectorize: not a valid gufunc signature: {signature!r}")
    ins, outs = signature.split("->")
    parse = lambda s: [tuple(d for d in re.split(r"\s*,\s*", g.strip("() ")) if d)  # noqa: E731
                       for g in re.findall(_DIMS, s)]
    return parse(ins), parse(outs)


def vectorize(pyfunc: Callable, *, excluded: frozenset = frozenset(),
              signature: str | None = None) -> Callable:
    """Lift ``pyfunc`` (written for its core shapes) to broadcast over leading dimensions,
    by nested ``vmap`` (``signature`` as in ``numpy.vectorize``, e.g. '(n),(n)->()')."""

    @functools.wraps(pyfunc)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        static = {i: a for i, a in enumerate(args) if i in excluded}
        dyn_idx = [i for i in range(len(args)) if i not in excluded]
        arrays = [ensure_arraylike("vectorize", args[i]) for i in dyn_idx]
        if signature is None:
            in_core = [()] * len(arrays)
        else:
            in_core, _ = _parse_signature(signature)
            if len(in_core) != len(arrays):
                raise TypeError(f"vectorize: signature {signature!r} expects {len(in_core)} "
                                f"array arguments, got {len(arrays)}")
        loop_shapes = []
        for a, core_dims in zip(arrays, in_core):
            nd = aval(a).ndim - len(core_dims)
            if nd < 0:
                raise ValueError(f"vectorize: input of shape {aval(a).shape} has fewer "
                                 f"dimensions than its core dimensions {core_dims}")
            loop_shapes.append(aval(a).shape[:nd])
        loop = tuple(np.broadcast_shapes(*loop_shapes)) if loop_shapes else ()
        arrays = [broadcast_to(a, loop + aval(a).shape[aval(a).ndim - len(c):])
                  for a, c in zip(arrays, in_core)]

        def call(*xs: Any) -> Any:
            full = dict(static)
            full.update(zip(dyn_idx, xs))
            return pyfunc(*[full[i] for i in range(len(args))], **kwargs)
        f = call
        for _ in loop:
            f = vmap(f)
        return f(*arrays)
    return wrapped


def apply_along_axis(func1d: Callable, axis: int, arr: Any, *args: Any, **kwargs: Any) -> Any:
    """``func1d`` applied to the 1-d slices of ``arr`` along ``axis`` (via nested vmaps)."""
    arr = ensure_arraylike("apply_along_axis", arr)
    nd = aval(arr).ndim
    axis = canonicalize_axis(axis, nd, "apply_along_axis")
    func = lambda a: func1d(a, *args, **kwargs)  # noqa: E731
    for i in range(1, nd - axis):
        func = vmap(func, in_axes=i, out_axes=-1)
    for _ in range(axis):
        func = vmap(func, in_axes=0, out_axes=0)
    return func(arr)


def apply_over_axes(func: Callable, a: Any, axes: Sequence[int]) -> Any:
    """Apply ``func(a, axis)`` repeatedly over ``axes``, keeping dimensions."""
    a = ensure_arraylike("apply_over_axes", a)
    for axis in (axes,) if isinstance(axes, int) else axes:
        b = func(a, axis)
        a = b if aval(b).ndim == aval(a).ndim else expand_dims(b, axis)
    return a


def piecewise(x: Any, condlist: Any, funclist: list, *args: Any, **kw: Any) -> Any:
    """Evaluate ``funclist[i](x)`` (or constants) where ``condlist[i]`` holds; a final extra
    function is the default. Every function is evaluated on all of ``x``, then selected."""
    x = ensure_arraylike("piecewise", x)
    conds = condlist if isinstance(condlist, (list, tuple)) else [condlist[i] for i in
                                                                   range(len(condlist))]
    nc, nf = len(conds), len(funclist)
    if nf == nc + 1:
        funclist = [funclist[-1]] + list(funclist[:-1])
    elif nf == nc:
        funclist = [0] + list(funclist)
    else:
        raise ValueError(f"piecewise: with {nc} condition(s), either {nc} or {nc + 1} "
                         f"functions are expected; got {nf}")
    dt = aval(x).dtype
    branches = [lax.convert_element_type(f(x, *args, **kw), dt) if callable(f)
                else lax.broadcast_in_dim(lax.convert_element_type(f, dt), aval(x).shape, ())
                for f in funclist]
    # the last true condition wins; the default (index 0) when none holds
    masks = [lax.full(aval(x).shape, True, np.bool_)] + [
        broadcast_to(lax.convert_element_type(ensure_arraylike("piecewise", c), np.bool_),
                     aval(x).shape) for c in conds]
    stacked = lax.concatenate([lax.expand_dims(m, (0,)) for m in masks[::-1]], 0)
    which = lax.sub(lax.convert_element_type(nc, np.int32), argmax(stacked, axis=0))
    return lax.select_n(which, *[broadcast_to(b, aval(x).shape) for b in branches])


__all__ = ["vectorize", "apply_along_axis", "apply_over_axes", "piecewise"]
