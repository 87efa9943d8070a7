"""An array module with a few functions replaced: how CuPy is handed to the impls.

Every primitive's impl is written against the NumPy API and receives an array module
``xp``. CuPy follows that API except in a few places the impls rely on; ``Namespace``
wraps a module and replaces exactly those, so the impls need no CuPy branches:

* ``ufunc.at`` (scatter with duplicate indices): CuPy's ``add``, ``multiply``, ``maximum``
  and ``minimum`` get ``.at`` from the backend (``cupyx.scatter_add``/``scatter_max``/
  ``scatter_min`` or its own kernels: atomic updates, so duplicates combine as in
  ``numpy.add.at``);
* ``sort``/``argsort`` take NumPy's ``kind`` (CuPy's sorts are always stable and reject it);
* ``lexsort`` sorts along any axis with any number of keys (CuPy's takes no ``axis``).

A backend may also give ``fungrad_matmul_tf32``: its ``matmul`` multiplying float32 on
TensorFloat-32 tensor cores, which contractions below ``HIGHEST`` precision use
(``lax.dot.matmul_for``), as JAX's GPU does.

It also carries ``fungrad_overrides``: primitive name -> impl, for the primitives whose
NumPy code does not suit the device (one generated kernel instead of many small ones);
``impl_for`` wraps a device's implementations so they take bfloat16 buffers
(``fungrad.backends.bfloat16``).
Nothing here imports CuPy, so it is tested with NumPy standing in.
"""
from __future__ import annotations

import types
from typing import Any, Callable

from fungrad.backends.bfloat16 import widened


class AtUfunc:
    """A ufunc whose ``.at(a, index, values)`` is ``at`` (everything else is the ufunc's)."""

    def __init__(self, ufunc: Any, at: Callable[[Any, Any, Any], None]) -> None:
        self._ufunc = ufunc
        self.at = at

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ufunc(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ufunc, name)


def lexsort(xp: Any, keys: Any, axis: int = -1) -> Any:
    """``numpy.lexsort`` along ``axis`` (last key primary) by stable argsorts, least
    significant key first: each pass keeps the order of equal keys from the one before."""
    perm = None
    for key in keys:
        if perm is None:
            perm = xp.argsort(key, axis=axis, kind="stable")
        else:
            ordered = xp.take_along_axis(key, perm, axis=axis)
            perm = xp.take_along_axis(perm, xp.argsort(ordered, axis=axis, kind="stable"),
                                      axis=axis)
    return perm


class Namespace(types.ModuleType):
    """``module`` with ``replaced`` names (and ``fungrad_overrides``) put in front of it.

    Its ``__name__`` is the module's, so caches and fusers keyed by the backend's name
    (``"cupy"``) see the same backend."""

    def __init__(self, module: Any, replaced: dict[str, Any],
                 overrides: dict[str, Callable[..., Any]]) -> None:
        super().__init__(module.__name__)
        self._module = module
        self.__dict__.update(replaced)
        self.fungrad_overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def device_namespace(module: Any, scatter: dict[str, Callable[[Any, Any, Any], None]],
                     overrides: dict[str, Callable[..., Any]],
                     matmul_tf32: Callable[..., Any] | None = None) -> Namespace:
    """``module`` (CuPy) with the replacements listed in this module's docstring;
    ``scatter`` maps ufunc names to their ``at`` functions, ``matmul_tf32`` is the
    backend's TensorFloat-32 ``matmul`` (None: it has none)."""
    def sort(a: Any, axis: int = -1, kind: str | None = None) -> Any:
        return module.sort(a, axis=axis)

    def argsort(a: Any, axis: int = -1, kind: str | None = None) -> Any:
        return module.argsort(a, axis=axis)

    replaced: dict[str, Any] = {name: AtUfunc(getattr(module, name), at)
                                for name, at in scatter.items()}
    replaced.update(sort=sort, argsort=argsort,
                    lexsort=lambda keys, axis=-1: lexsort(ns, keys, axis))
    if matmul_tf32 is not None:
        replaced["fungrad_matmul_tf32"] = matmul_tf32
    ns = Namespace(module, replaced, overrides)
    return ns


def impl_for(xp: Any, name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    """The implementation of primitive ``name`` on backend ``xp``: NumPy's is ``impl``;
    a device's is its override, else ``impl``, taking bfloat16 buffers through float32
    (``bfloat16.widened``: the device library has no bfloat16)."""
    overrides = getattr(xp, "fungrad_overrides", None)
    return impl if overrides is None else widened(name, overrides.get(name, impl))
