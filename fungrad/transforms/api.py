"""``jvp``, ``linearize``, ``vjp``, ``grad``, ``value_and_grad``, ``vmap``,
``jacfwd``, ``jacrev``, ``hessian``, ``make_jaxpr``, ``eval_shape``.

Each function flattens pytrees, creates its trace on top of the current one,
runs the function, unpacks the results and invalidates the trace (so escaped
tracers are caught). They compose because each one only calls ``bind``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe


def _fun_name(f: Callable) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _check_leaf(x: Any, fname: str, what: str) -> Any:
    if isinstance(x, (Array, core.Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex, np.ndarray, np.generic)):
        from fungrad.lax._prim import as_operand
        return as_operand(x)
    raise TypeError(f"{fname}: {what} must be arrays or scalars, got {type(x).__name__}: {x!r}")


def _flatten_args(args: Sequence[Any], fname: str) -> tuple[list, Any]:
    leaves, treedef = tree_util.flatten(tuple(args))
    return [_check_leaf(x, fname, "arguments") for x in leaves], treedef


def _flat_outputs(out: Any, fname: str) -> tuple[list, Any]:
    leaves, treedef = tree_util.flatten(out)
    return [_check_leaf(x, fname, "outputs") for x in leaves], treedef


def _split_aux(out: Any, has_aux: bool, fname: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{fname}: with has_aux=True the function must return a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out[0], out[1]


# --------------------------------------------------------------------------- jvp / linearize

def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """Forward-mode derivative: ``(fun(*primals), J @ tangents)`` (as ``jax.jvp``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jvp(lambda x: x ** 2, (jnp.array([1.0, 2.0]),), (jnp.array([1.0, 0.5]),))
        (Array([1., 4.], dtype=float32), Array([2., 2.], dtype=float32))
    """
    fname = _fun_name(fun)
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp({fname}): primals and tangents must be tuples or lists, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    flat_p, in_tree = _flatten_args(primals, "jvp")
    flat_t, t_tree = _flatten_args(tangents, "jvp")
    if in_tree != t_tree:
        raise TypeError(f"jvp({fname}): primal and tangent trees differ: {in_tree} vs {t_tree}")
    for p, t in zip(flat_p, flat_t):
        pa, ta = core.get_aval(p), core.get_aval(t)
        if pa.shape != ta.shape or ta.dtype != dtypes.tangent_dtype(pa.dtype):
            raise TypeError(f"jvp({fname}): tangent {ta.str_short()} does not match primal "
                            f"{pa.str_short()} (expected dtype {dtypes.tangent_dtype(pa.dtype).name})")
    trace = ad.JVPTrace(core.current_trace())
    try:
        args = [ad.JVPTracer(trace, p, t if dtypes.is_inexact(core.get_aval(p).dtype) else ad.Zero.from_primal(p))
                for p, t in zip(flat_p, flat_t)]
        with core.set_current_trace(trace):
            out = fun(*tree_util.unflatten(in_tree, args))
        out, aux = _split_aux(out, has_aux, f"jvp({fname})")
        flat_out, out_tree = _flat_outputs(out, f"jvp({fname})")
        pairs = [trace.unpack(o) for o in flat_out]
    finally:
        trace.invalidate()
    out_p = tree_util.unflatten(out_tree, [p for p, _ in pairs])
    out_t = tree_util.unflatten(out_tree, [ad.instantiate(t) for _, t in pairs])
    return (out_p, out_t, aux) if has_aux else (out_p, out_t)


def _linearize_flat(fun: Callable, flat_p: list, in_tree: Any, has_aux: bool, fname: str):
    """Run the JVP of ``fun`` with tangents unknown; return primal outputs, the linear
    jaxpr (tangents in -> tangents out) and its residuals."""
    pe_trace = pe.JaxprTrace(core.current_trace(), stage_all=False, name="linearize")
    jvp_trace = ad.JVPTrace(pe_trace)
    try:
        args = []
        for p in flat_p:
            aval = ad.Zero.from_primal(p).aval
            t = pe_trace.new_arg(aval)
            args.append(ad.JVPTracer(jvp_trace, p, t) if dtypes.is_inexact(aval.dtype) else p)
        with core.set_current_trace(jvp_trace):
            out = fun(*tree_util.unflatten(in_tree, args))
        out, aux = _split_aux(out, has_aux, fname)
        flat_out, out_tree = _flat_outputs(out, fname)
        pairs = [jvp_trace.unpack(o) for o in flat_out]
        out_p = [p for p, _ in pairs]
        out_t = [ad.instantiate(t) if type(t) is not ad.Zero else t for _, t in pairs]
        zero_outs = [type(t) is ad.Zero for t in out_t]
        with core.set_current_trace(pe_trace):
            jaxpr, consts = pe_trace.to_jaxpr([ad.zeros_like_aval(t.aval) if type(t) is ad.Zero else t
                                               for t in out_t])
    finally:
        jvp_trace.invalidate()
        pe_trace.invalidate()
    return out_p, out_tree, aux, jaxpr, consts, zero_outs


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` evaluates the JVP linearly.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> y, f_jvp = fungrad.linearize(lambda x: x ** 3, jnp.array([1.0, 2.0]))
        >>> f_jvp(jnp.array([1.0, 0.5]))
        Array([3., 6.], dtype=float32)
    """
    fname = f"linearize({_fun_name(fun)})"
    flat_p, in_tree = _flatten_args(primals, fname)
    out_p, out_tree, aux, jaxpr, consts, _ = _linearize_flat(fun, flat_p, in_tree, has_aux, fname)

    def f_jvp(*tangents: Any) -> Any:
        flat_t, t_tree = _flatten_args(tangents, fname)
        if t_tree != in_tree:
            raise TypeError(f"{fname}: tangent tree {t_tree} does not match primal tree {in_tree}")
        outs = core.eval_jaxpr(jaxpr, consts, *flat_t)
        return tree_util.unflatten(out_tree, outs)
    primal_out = tree_util.unflatten(out_tree, out_p)
    return (primal_out, f_jvp, aux) if has_aux else (primal_out, f_jvp)


# --------------------------------------------------------------------------- vjp / grad

class _VJPFunction:
    """The pullback returned by ``vjp``: maps output cotangents to input cotangents."""

    def __init__(self, jaxpr, consts, in_tree, out_tree, flat_p, out_avals, fname) -> None:
        self.jaxpr, self.consts = jaxpr, consts
        self.in_tree, self.out_tree = in_tree, out_tree
        self.in_avals = [core.get_aval(p) for p in flat_p]
        self.out_avals = out_avals
        self.fname = fname

    def __call__(self, cotangent: Any, _consume: bool = False) -> tuple:
        flat_ct, ct_tree = tree_util.flatten(cotangent)
        if ct_tree != self.out_tree:
            raise TypeError(f"{self.fname}: cotangent tree {ct_tree} does not match the output "
                            f"tree {self.out_tree}")
        cts = []
        for ct, aval in zip(flat_ct, self.out_avals):
            ct = _check_leaf(ct, self.fname, "cotangents")
            ca = core.get_aval(ct)
            if ca.shape != aval.shape or (dtypes.is_inexact(aval.dtype) and ca.dtype != aval.dtype):
                raise TypeError(f"{self.fname}: cotangent {ca.str_short()} does not match the "
                                f"output {aval.str_short()}")
            cts.append(ct)
        args = [ad.UndefinedPrimal(v.aval) for v in self.jaxpr.invars]
        consts = self.consts if _consume else list(self.consts)
        if _consume:
            self.consts = []
        cts_in = ad.backward_pass(self.jaxpr, consts, args, cts, consume=True)
        out = []
        for ct, aval in zip(cts_in, self.in_avals):
            if not dtypes.is_inexact(aval.dtype):
                out.append(np.zeros(aval.shape, dtypes.float0))
            else:
                out.append(ad.instantiate(ct))
        return tuple(tree_util.unflatten(self.in_tree, out))


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """Reverse mode: ``(fun(*primals), f_vjp)`` with ``f_vjp(ct) -> cotangents of primals``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> x, w = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
        >>> out, f_vjp = fungrad.vjp(lambda x, w: x * w, x, w)
        >>> f_vjp(jnp.ones(2))
        (Array([3., 4.], dtype=float32), Array([1., 2.], dtype=float32))
    """
    fname = f"vjp({_fun_name(fun)})"
    flat_p, in_tree = _flatten_args(primals, fname)
    out_p, out_tree, aux, jaxpr, consts, _ = _linearize_flat(fun, flat_p, in_tree, has_aux, fname)
    f_vjp = _VJPFunction(jaxpr, consts, in_tree, out_tree, flat_p,
                         [core.get_aval(o) for o in out_p], fname)
    primal_out = tree_util.unflatten(out_tree, out_p)
    return (primal_out, f_vjp, aux) if has_aux else (primal_out, f_vjp)


def _argnums_tuple(argnums: int | Sequence[int], nargs: int, fname: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(f"{fname}: argnums {argnums} out of range for {nargs} positional "
                             "arguments")
    return tuple(n % nargs for n in nums)


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   allow_int: bool = False) -> Callable:
    """A function returning ``(fun(*args), gradient w.r.t. args[argnums])`` (as JAX).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.value_and_grad(lambda x: jnp.sum(x ** 2))(jnp.array([1.0, 2.0]))
        (Array(5., dtype=float32), Array([2., 4.], dtype=float32))
    """
    fname = _fun_name(fun)

    @functools.wraps(fun)
    def value_and_grad_f(*args: Any, **kwargs: Any):
        nums = _argnums_tuple(argnums, len(args), f"grad({fname})")
        for n in nums:
            for leaf in tree_util.leaves(args[n]):
                dt = dtypes.dtype_and_weak(leaf)[0]
                if not dtypes.is_inexact(dt) and not allow_int:
                    raise TypeError(
                        f"grad({fname}) requires real- or complex-valued inputs (input dtype "
                        f"that is a sub-dtype of np.inexact), but got {dt.name} for argument "
                        f"{n}. If you want to use integer-valued inputs, use vjp or set "
                        "allow_int to True.")
        diff_args, restricted = _restrict(fun, args, argnums, f"grad({fname})", kwargs)
        if has_aux:
            out, f_vjp, aux = vjp(restricted, *diff_args, has_aux=True)
        else:
            (out, f_vjp), aux = vjp(restricted, *diff_args), None
        leaves = tree_util.leaves(out)
        if len(leaves) != 1 or core.get_aval(leaves[0]).shape != ():
            shape = core.get_aval(leaves[0]).shape if len(leaves) == 1 else f"a pytree {out!r}"
            raise TypeError(f"grad({fname}): gradient only defined for scalar-output functions. "
                            f"Output had shape: {shape}.")
        dt = core.get_aval(leaves[0]).dtype
        if not dtypes.is_inexact(dt):
            raise TypeError(f"grad({fname}) requires real- or complex-valued outputs (output "
                            f"dtype that is a sub-dtype of np.inexact), but got {dt.name}.")
        from fungrad.lax import convert_element_type
        # The seed keeps the output's weak type (as JAX's ones_like), so the gradient of
        # a Python-scalar argument stays weakly typed.
        seed = convert_element_type(1, dt, weak_type=core.get_aval(leaves[0]).weak_type)
        ct = tree_util.unflatten(tree_util.structure(out), [seed])
        grads = f_vjp(ct, _consume=True)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, aux), g) if has_aux else (out, g)
    return value_and_grad_f


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         allow_int: bool = False) -> Callable:
    """Gradient of a scalar-valued ``fun`` with respect to ``args[argnums]`` (as ``jax.grad``).

    The gradient has the pytree structure of the differentiated argument(s).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> loss = lambda p, x: jnp.sum(p["w"] * x)
        >>> fungrad.grad(loss)({"w": jnp.ones(2)}, jnp.array([3.0, 4.0]))
        {'w': Array([3., 4.], dtype=float32)}
        >>> fungrad.grad(fungrad.grad(jnp.sin))(0.5)  # second derivative: -sin
        Array(-0.47942555, dtype=float32, weak_type=True)
    """
    vg = value_and_grad(fun, argnums, has_aux, allow_int)

    @functools.wraps(fun)
    def grad_f(*args: Any, **kwargs: Any):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]
    return grad_f


# --------------------------------------------------------------------------- vmap

def _axis_size(flat_args: list, flat_axes: list, axis_size: int | None, fname: str) -> int:
    sizes = {}
    for x, ax in zip(flat_args, flat_axes):
        if ax is not None:
            shape = core.get_aval(x).shape
            if not -len(shape) <= ax < max(len(shape), 1) or not shape:
                raise ValueError(f"vmap({fname}) was requested to map its argument along axis {ax}, "
                                 f"which implies that its rank should be at least {ax + 1 if ax >= 0 else -ax}, "
                                 f"but is only {len(shape)} (its shape is {shape})")
            sizes[shape[ax]] = shape
    if axis_size is not None:
        sizes.setdefault(axis_size, None)
    if len(sizes) > 1:
        raise ValueError(f"vmap({fname}) got inconsistent sizes for the mapped axes: "
                         f"{sorted(sizes)} (in_axes map arguments of different sizes along "
                         "their mapped axis)")
    if not sizes:
        raise ValueError(f"vmap({fname}) must have at least one non-None value in in_axes, "
                         "or axis_size given")
    return next(iter(sizes))


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_size: int | None = None,
         axis_name: Any = None) -> Callable:
    """Vectorise ``fun`` over the ``in_axes`` of its arguments (as ``jax.vmap``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.vmap(jnp.dot, in_axes=(0, None))(jnp.ones((3, 2)), jnp.array([1.0, 2.0]))
        Array([3., 3., 3.], dtype=float32)
    """
    fname = _fun_name(fun)
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(fun)
    def vmapped(*args: Any, **kwargs: Any):
        flat_args, in_tree = _flatten_args(args, f"vmap({fname})")
        axes_prefix = in_axes if isinstance(in_axes, tuple) or not args else in_axes
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap({fname}) in_axes has {len(in_axes)} entries but the "
                             f"function got {len(args)} positional arguments")
        flat_axes = tree_util.broadcast_prefix(
            axes_prefix if isinstance(axes_prefix, tuple) else (axes_prefix,) * len(args),
            tuple(args), "vmap in_axes")
        for ax in flat_axes:
            if ax is not None and not isinstance(ax, int):
                raise TypeError(f"vmap({fname}): in_axes must be ints or None, got {ax!r}")
        # Keyword arguments are mapped over their leading axis, as in jax.vmap.
        flat_kw, kw_tree = _flatten_args((kwargs,), f"vmap({fname})")
        n_pos = len(flat_args)
        flat_args, flat_axes = flat_args + flat_kw, flat_axes + [0] * len(flat_kw)
        size = _axis_size(flat_args, flat_axes, axis_size, fname)
        trace = batching.BatchTrace(core.current_trace(), size, axis_name)
        try:
            tracers = []
            for x, ax in zip(flat_args, flat_axes):
                if ax is None:
                    tracers.append(x)
                else:
                    tracers.append(batching.BatchTracer(trace, x, ax % core.get_aval(x).ndim))
            with core.set_current_trace(trace):
                out = fun(*tree_util.unflatten(in_tree, tracers[:n_pos]),
                          **tree_util.unflatten(kw_tree, tracers[n_pos:])[0])
            flat_out, out_tree = _flat_outputs(out, f"vmap({fname})")
            flat_out_axes = tree_util.broadcast_prefix(out_axes, out, "vmap out_axes")
            results = []
            for o, oax in zip(flat_out, flat_out_axes):
                val, bdim = trace.unpack(o)
                with core.set_current_trace(trace.parent):
                    if oax is None:
                        if bdim is not None:
                            raise ValueError(f"vmap({fname}) has out_axes=None for an output "
                                             "that is batched; it must not depend on the "
                                             "mapped inputs")
                        results.append(val)
                        continue
                    val = batching.bdim_at_front(val, bdim, size)
                    ndim = core.get_aval(val).ndim
                    results.append(batching.moveaxis(val, 0, oax % ndim))
        finally:
            trace.invalidate()
        return tree_util.unflatten(out_tree, results)
    return vmapped


# --------------------------------------------------------------------------- jacobians

def _restrict(fun: Callable, args: Sequence[Any], argnums: int | Sequence[int], fname: str,
              kwargs: dict | None = None) -> tuple[tuple, Callable]:
    """The differentiated arguments, and ``fun`` as a function of those alone."""
    nums = _argnums_tuple(argnums, len(args), fname)

    def restricted(*dargs: Any) -> Any:
        full = list(args)
        for n, a in zip(nums, dargs):
            full[n] = a
        return fun(*full, **(kwargs or {}))
    return tuple(args[n] for n in nums), restricted


def _std_basis(flat: list) -> tuple[Any, list[int]]:
    """An identity matrix covering every element of the leaves in ``flat``."""
    from fungrad import numpy as jnp
    sizes = [core.get_aval(x).size for x in flat]
    dt = dtypes.result_type(*[core.get_aval(x).dtype for x in flat])
    return jnp.eye(sum(sizes), dtype=dt), sizes


def _unravel(v: Any, flat: list, sizes: list[int], tree: Any, axis: int = 0) -> Any:
    """Split ``v`` along ``axis`` into pieces shaped like the leaves in ``flat``."""
    from fungrad import numpy as jnp
    pieces, start = [], 0
    for x, n in zip(flat, sizes):
        aval = core.get_aval(x)
        piece = jnp.take(v, jnp.arange(start, start + n), axis=axis) if axis else v[start:start + n]
        shape = core.get_aval(v).shape
        if axis:
            new_shape = shape[:axis % len(shape)] + aval.shape
        else:
            new_shape = aval.shape + shape[1:]
        pieces.append(jnp.reshape(piece, new_shape).astype(aval.dtype))
        start += n
    return tree_util.unflatten(tree, pieces)


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Jacobian by forward mode: ``vmap`` of ``jvp`` over a standard basis (as ``jax.jacfwd``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jacfwd(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
        Array([[2., 0.],
               [0., 4.]], dtype=float32)
    """

    def jac_f(*args: Any):
        dargs, restricted = _restrict(fun, args, argnums, "jacfwd")
        flat, tree = _flatten_args(dargs, "jacfwd")
        basis, sizes = _std_basis(flat)

        def push(v):
            out = jvp(restricted, dargs, _unravel(v, flat, sizes, tree), has_aux=has_aux)
            return (out[0], out[1], out[2]) if has_aux else (out[0], out[1])
        out_axes = (None, -1, None) if has_aux else (None, -1)
        res = vmap(push, out_axes=out_axes)(basis)
        y, cols = res[0], res[1]
        jac = tree_util.map(lambda yl, c: _in_tree_jac(_unravel(c, flat, sizes, tree, axis=-1), argnums),
                            y, cols)
        return (jac, res[2]) if has_aux else jac
    return jac_f


def _in_tree_jac(per_arg: tuple, argnums: int | Sequence[int]) -> Any:
    return per_arg[0] if isinstance(argnums, int) else per_arg


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Jacobian by reverse mode: ``vmap`` of the pullback over a standard basis (as ``jax.jacrev``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jacrev(lambda x: x[::-1] * 2.0)(jnp.array([1.0, 2.0]))
        Array([[0., 2.],
               [2., 0.]], dtype=float32)
    """
    from fungrad import numpy as jnp

    def jac_f(*args: Any):
        dargs, restricted = _restrict(fun, args, argnums, "jacrev")
        if has_aux:
            y, pullback, aux = vjp(restricted, *dargs, has_aux=True)
        else:
            (y, pullback), aux = vjp(restricted, *dargs), None
        flat_y, y_tree = tree_util.flatten(y)
        basis, sizes = _std_basis(flat_y)
        cts = vmap(lambda v: pullback(_unravel(v, flat_y, sizes, y_tree)))(basis)
        per_out, start = [], 0
        for leaf, n in zip(flat_y, sizes):
            out_shape = core.get_aval(leaf).shape
            rows = tree_util.map(lambda c: jnp.reshape(c[start:start + n], out_shape + c.shape[1:]), cts)
            per_out.append(_in_tree_jac(rows, argnums))
            start += n
        jac = tree_util.unflatten(y_tree, per_out)
        return (jac, aux) if has_aux else jac
    return jac_f


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Hessian as ``jacfwd(jacrev(fun))``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.hessian(lambda x: jnp.sum(x ** 3))(jnp.array([1.0, 2.0]))
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux), argnums, has_aux=has_aux)


# --------------------------------------------------------------------------- staging

def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               return_shape: bool = False) -> Callable:
    """A function returning the ``ClosedJaxpr`` of ``fun`` at the given arguments.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> print(fungrad.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0))
        { lambda ; a:f32[]. let b:f32[] = sin a; c:f32[] = mul b 2.0:f32[] in (c,) }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def make(*args: Any, **kwargs: Any):
        dyn = [a for i, a in enumerate(args) if i not in static]
        flat, in_tree = _flatten_args(dyn, "make_jaxpr")
        avals = [core.get_aval(x) for x in flat]
        store = {}

        def flat_fun(*tracers):
            dyn_args = tree_util.unflatten(in_tree, tracers)
            it = iter(dyn_args)
            full = [a if i in static else next(it) for i, a in enumerate(args)]
            out = fun(*full, **kwargs)
            leaves, store["tree"] = _flat_outputs(out, "make_jaxpr")
            return leaves
        jaxpr, consts, outs = pe.trace_to_jaxpr(flat_fun, avals, "make_jaxpr")
        closed = ClosedJaxpr(jaxpr, consts)
        if return_shape:
            shapes = tree_util.unflatten(store["tree"], [ShapeDtypeStruct(v.aval.shape, v.aval.dtype)
                                                         for v in jaxpr.outvars])
            return closed, shapes
        return closed
    return make


class ShapeDtypeStruct:
    """A shape and dtype without data (``jax.ShapeDtypeStruct``)."""
    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))

    @property
    def aval(self) -> ShapedArray:
        return ShapedArray(self.shape, self.dtype, self.weak_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeDtypeStruct) and (self.shape, self.dtype) == (other.shape, other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """Shapes and dtypes of ``fun(*args)`` by abstract evaluation only (no computation).

    Arguments may be arrays or anything with ``shape`` and ``dtype`` (``ShapeDtypeStruct``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.eval_shape(lambda a: a @ a.T, fungrad.ShapeDtypeStruct((4, 3), jnp.float32))
        ShapeDtypeStruct(shape=(4, 4), dtype=float32)
    """
    leaves, in_tree = tree_util.flatten(args)
    avals = [ShapedArray(x.shape, dtypes.canonicalize_dtype(x.dtype), getattr(x, "weak_type", False))
             if hasattr(x, "shape") and hasattr(x, "dtype") else core.get_aval(x) for x in leaves]
    store = {}

    def flat_fun(*tracers):
        out = fun(*tree_util.unflatten(in_tree, tracers), **kwargs)
        out_leaves, store["tree"] = _flat_outputs(out, "eval_shape")
        return out_leaves
    jaxpr, _, _ = pe.trace_to_jaxpr(flat_fun, avals, "eval_shape")
    return tree_util.unflatten(store["tree"], [ShapeDtypeStruct(v.aval.shape, v.aval.dtype, v.aval.weak_type)
                                               for v in jaxpr.outvars])
