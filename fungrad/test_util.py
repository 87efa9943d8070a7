"""Checking derivatives against finite differences (``jax.test_util.check_grads``).

``check_grads(f, args, order)`` checks, in one random direction each:
* forward mode: ``jvp(f)`` against the central difference
  ``(f(x + eps v) - f(x - eps v)) / (2 eps)``;
* reverse mode: the dot-product test ``<J v, w> == <v, J^T w>`` with the
  pullback from ``vjp(f)`` and the numerical ``J v``;
and recursively the derivatives of those up to ``order``.

Precision: the step ``eps`` and the tolerances depend on the dtype of the
least precise floating input (a float32 function needs a much larger step than
a float64 one). Differences, quotients and inner products are computed in
float64 on the host, so the check itself adds no rounding error.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad.transforms.api import jvp, linearize, vjp

__all__ = ["check_grads", "check_jvp", "check_vjp", "numerical_jvp"]
__dir__ = public_dir(__all__)

# Keyed by dtype name: bfloat16's dtype exists only once ml_dtypes is loaded.
# Central differences: truncation error ~ eps^2, rounding error ~ ulp / eps; the step
# balances the two for each precision.
_DEFAULT_EPS = {"float64": 1e-6, "complex128": 1e-6, "float32": 1e-3, "complex64": 1e-3,
                "float16": 3e-2, "bfloat16": 1e-1}
_DEFAULT_TOL = {"float64": 1e-5, "complex128": 1e-5, "float32": 2e-3, "complex64": 2e-3,
                "float16": 3e-2, "bfloat16": 1e-1}
_PRECISION_ORDER = ["float64", "complex128", "float32", "complex64", "float16", "bfloat16"]


def _dtype(x: Any) -> np.dtype:
    """The dtype fungrad computes ``x`` in (Python scalars and 64-bit values canonicalised)."""
    if isinstance(x, (bool, int, float, complex)):
        return dtypes.dtype_and_weak(x)[0]
    return dtypes.canonicalize_dtype(np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)


def _is_float(dt: np.dtype) -> bool:
    return dtypes.is_inexact(dt)


def _least_precise(tree: Any) -> np.dtype:
    dts = [_dtype(x) for x in tree_util.leaves(tree) if _is_float(_dtype(x))]
    return max(dts, key=lambda dt: _PRECISION_ORDER.index(dt.name), default=np.dtype(np.float32))


def _pick(value: Any, table: dict, dtype: np.dtype) -> float:
    if value is None:
        return table[dtype.name]
    if isinstance(value, dict):
        return {np.dtype(k): v for k, v in value.items()}.get(dtype, table[dtype.name])
    return float(value)


def _settings(args: Any, out: Any, atol: Any, rtol: Any, eps: Any) -> tuple[float, float, float]:
    """Tolerances and step for the least precise floating dtype among inputs and outputs."""
    dt = _least_precise((args, out))
    return (_pick(atol, _DEFAULT_TOL, dt), _pick(rtol, _DEFAULT_TOL, dt),
            _pick(eps, _DEFAULT_EPS, dt))


def _host64(x: Any) -> np.ndarray:
    """A leaf as a float64 (or complex128) NumPy array."""
    a = np.asarray(x)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def _rand_like(rng: np.random.RandomState, x: Any) -> Any:
    """A random direction shaped like ``x``; float0 zeros for integer and boolean leaves."""
    dt = _dtype(x)
    if not _is_float(dt):
        return np.zeros(np.shape(x), dtypes.float0)
    v = rng.randn(*np.shape(x))
    if dt.kind == "c":
        v = v + 1j * rng.randn(*np.shape(x))
    return np.asarray(v, dtype=dt)


def _step(primals: Any, direction: Any, scale: float) -> Any:
    """``primals + scale * direction`` in float64, rounded back to each leaf's dtype."""
    def leaf(x, v):
        dt = _dtype(x)
        if not _is_float(dt):
            return x
        out = np.asarray(_host64(x) + scale * _host64(v), dtype=dt)
        return out.item() if isinstance(x, (float, complex)) else out
    return tree_util.map(leaf, primals, direction)


def numerical_jvp(f: Callable, primals: Sequence, tangents: Sequence, eps: float) -> Any:
    """The central difference of ``f`` at ``primals`` along ``tangents`` (float64 leaves)."""
    f_pos = f(*_step(primals, tangents, eps))
    f_neg = f(*_step(primals, tangents, -eps))

    def quotient(a: Any, b: Any) -> np.ndarray:
        if not _is_float(_dtype(a)):  # integer outputs have float0 derivatives
            return np.zeros(np.shape(a), dtypes.float0)
        return (_host64(a) - _host64(b)) / (2 * eps)
    return tree_util.map(quotient, f_pos, f_neg)


def _conj(tree: Any) -> Any:
    return tree_util.map(lambda x: np.conj(x) if np.asarray(x).dtype.kind == "c" else x, tree)


def _inner(xs: Any, ys: Any) -> float:
    """Real part of the sum over float leaves of <x, y> (float64)."""
    total = 0.0
    for x, y in zip(tree_util.leaves(xs), tree_util.leaves(ys)):
        if np.asarray(x).dtype.kind == "V" or np.asarray(y).dtype.kind == "V":
            continue  # float0: integer inputs carry no derivative
        total += float(np.real(np.vdot(_host64(x).ravel(), _host64(y).ravel())))
    return total


def _assert_close(what: str, got: Any, want: Any, atol: float, rtol: float, err_msg: str) -> None:
    got_leaves, got_tree = tree_util.flatten(got)
    want_leaves, want_tree = tree_util.flatten(want)
    if got_tree != want_tree:
        raise AssertionError(f"{err_msg} {what}: tree structure {got_tree} != {want_tree}")
    for g, w in zip(got_leaves, want_leaves):
        if np.asarray(g).dtype.kind == "V":
            continue
        np.testing.assert_allclose(_host64(g), _host64(w), atol=atol, rtol=rtol,
                                   err_msg=f"{err_msg} {what}".strip())


def check_jvp(f: Callable, f_jvp: Callable, args: Sequence, atol: Any = None, rtol: Any = None,
              eps: Any = None, err_msg: str = "") -> None:
    """Check ``f_jvp(primals, tangents) -> (out, tangent_out)`` against finite differences."""
    rng = np.random.RandomState(0)
    tangent = tree_util.map(lambda x: _rand_like(rng, x), tuple(args))
    out, t_out = f_jvp(tuple(args), tangent)
    atol, rtol, eps = _settings(args, out, atol, rtol, eps)
    _assert_close("primal", out, f(*args), atol, rtol, err_msg)
    _assert_close("tangent", t_out, numerical_jvp(f, args, tangent, eps), atol, rtol, err_msg)


def check_vjp(f: Callable, f_vjp: Callable, args: Sequence, atol: Any = None, rtol: Any = None,
              eps: Any = None, err_msg: str = "") -> None:
    """Check ``f_vjp(*primals) -> (out, pullback)`` by the dot-product test:
    ``<J v, w>`` (finite differences) must equal ``<v, J^T w>`` (the pullback)."""
    rng = np.random.RandomState(0)
    out, pullback = f_vjp(*args)
    atol, rtol, eps = _settings(args, out, atol, rtol, eps)
    _assert_close("primal", out, f(*args), atol, rtol, err_msg)
    tangent = tree_util.map(lambda x: _rand_like(rng, x), tuple(args))
    t_out = numerical_jvp(f, args, tangent, eps)
    cotangent = tree_util.map(lambda y: _rand_like(rng, y), out)
    ct_in = pullback(_conj(cotangent))
    ip = _inner(tangent, _conj(ct_in))
    ip_expected = _inner(t_out, cotangent)
    # The inner products sum many terms: scale the tolerance with their magnitude.
    scale = max(abs(ip_expected), _inner(t_out, t_out) ** 0.5 * _inner(cotangent, cotangent) ** 0.5)
    if not abs(ip - ip_expected) <= atol + rtol * scale:
        raise AssertionError(f"{err_msg} cotangent projection: <v, J^T w> = {ip!r} but "
                             f"<J v, w> = {ip_expected!r} (atol={atol}, rtol={rtol})".strip())


def check_grads(f: Callable, args: Sequence, order: int, modes: Sequence[str] = ("fwd", "rev"),
                atol: Any = None, rtol: Any = None, eps: Any = None) -> None:
    """Check derivatives of ``f`` at ``args`` up to ``order`` against finite differences.

    Args:
        f: the function, ``f(*args)``.
        args: its arguments (arrays or pytrees of arrays).
        order: highest derivative order to check (2 also checks derivatives of the
            JVP and of the VJP).
        modes: ``"fwd"`` (jvp), ``"rev"`` (vjp) and/or ``"lin"`` (linearize).
        atol, rtol: tolerances (a number, or a dict dtype -> number); default by dtype.
        eps: finite-difference step (number or dict); default by dtype.

    Raises:
        AssertionError: if a derivative does not match.

    Example:
        >>> import numpy as np
        >>> import fungrad
        >>> from fungrad.test_util import check_grads
        >>> check_grads(fungrad.numpy.sin, (np.float64(0.5),), order=2)
    """
    def check(fun: Callable, fargs: Sequence, k: int, msg: str) -> None:
        if "fwd" in modes:
            fwd_msg = f"JVP of {msg}" if msg else "JVP"
            check_jvp(fun, lambda p, t: jvp(fun, p, t), fargs, atol, rtol, eps, fwd_msg)
            if k > 1:
                check(lambda p, t: jvp(fun, p, t), (tuple(fargs), _as_tangents(fargs)), k - 1,
                      fwd_msg)
        if "rev" in modes:
            rev_msg = f"VJP of {msg}" if msg else "VJP"
            check_vjp(fun, lambda *a: vjp(fun, *a), fargs, atol, rtol, eps, rev_msg)
            if k > 1:
                def fun_vjp(*a: Any) -> Any:
                    out, pullback = vjp(fun, *a)
                    return pullback(out)
                check(fun_vjp, fargs, k - 1, rev_msg)
        if "lin" in modes:
            lin_msg = f"LIN of {msg}" if msg else "LIN"
            check_jvp(fun, lambda p, t: _jvp_from_linearize(fun, p, t), fargs, atol, rtol, eps,
                      lin_msg)
            if k > 1:
                check(lambda p, t: _jvp_from_linearize(fun, p, t),
                      (tuple(fargs), _as_tangents(fargs)), k - 1, lin_msg)
    check(f, tuple(args), order, "")


def _as_tangents(args: Sequence) -> tuple:
    """``args`` reused as a tangent point (float0 zeros for integer leaves)."""
    return tree_util.map(lambda x: x if _is_float(_dtype(x)) else
                         np.zeros(np.shape(x), dtypes.float0), tuple(args))


def _jvp_from_linearize(f: Callable, primals: Sequence, tangents: Sequence) -> tuple:
    out, f_lin = linearize(f, *primals)
    return out, f_lin(*tangents)
