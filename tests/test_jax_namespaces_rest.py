"""The last small pieces of JAX's namespaces, against jax: ``print_saved_residuals`` and the
policy answers of ``jax.ad_checkpoint``, ``jax.custom_derivatives``' helpers and
``linear_call``, ``jax.stages.ArgInfo``, ``jax.dtypes.extended``/``prng_key`` and
``jax.Shard``."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from functools import partial

import jax
import jax.ad_checkpoint
import jax.custom_derivatives
import jax.numpy as jnp
import jax.stages
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import ad_checkpoint as fac
from fungrad import custom_derivatives as fcd
from fungrad import dtypes as fdtypes
from fungrad import stages as fstages
from fungrad._core.array import Shard
from tests.harness import GRAD_TOL, assert_same, to_fg, to_jax


def _printed(lib, f, *args, **kwargs) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        lib.ad_checkpoint.print_saved_residuals(f, *args, **kwargs)
    return out.getvalue().splitlines()


def _sans_site(lines: list[str]) -> list[str]:
    """The lines without their source location (fungrad names none inside a checkpoint:
    jaxprs keep no source lines)."""
    return [re.sub(r" from(?: /.*| ?)$", "", line) for line in lines]


def _both(make, *args, **kwargs) -> tuple[list[str], list[str]]:
    """``make(np_module, api)``'s residuals as printed by fungrad and by jax."""
    return (_printed(fungrad, make(fnp, fungrad), *to_fg(args), **to_fg(kwargs)),
            _printed(jax, make(jnp, jax), *to_jax(args), **to_jax(kwargs)))


X, Y = np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3), np.ones((3, 2), np.float32)


def _mlp(lib, api):
    def f(x, y):
        a = lib.sin(x)
        b = lib.cos(a) @ y
        return lib.sum(lib.tanh(b))
    return f


# --------------------------------------------------------------------------- print_saved_residuals

def test_print_saved_residuals_arguments_and_intermediates():
    fg, _ = _both(_mlp, X, Y)
    assert fg[0] == "f32[3,2] from the argument y"
    assert fg[1].startswith(f"f32[3,3] output of cos from {__file__}:")
    assert fg[1].endswith(" (_mlp.<locals>.f)")


def test_print_saved_residuals_same_lines_as_jax():
    # The lines name this file's lines and columns: identical to jax's.
    fg, ref = _both(_mlp, X, Y)
    assert fg == ref


@pytest.mark.parametrize("policy", ["nothing_saveable", "dots_saveable"])
def test_print_saved_residuals_checkpoint_policies(policy):
    fg, ref = _both(lambda lib, api: api.checkpoint(
        _mlp(lib, api), policy=getattr(api.checkpoint_policies, policy)), X, Y)
    # Inside a checkpoint, fungrad names no source line (jaxprs keep none): compare the rest.
    assert _sans_site(fg) == _sans_site(ref)
    assert fg[:2] == ["f32[3,3] from the argument x", "f32[3,2] from the argument y"]


def test_print_saved_residuals_everything_saveable():
    # fungrad saves what the backward pass reads, as without the checkpoint (jax also
    # saves the checkpoint's unused input x).
    fg = _printed(fungrad, fungrad.checkpoint(
        _mlp(fnp, fungrad), policy=fungrad.checkpoint_policies.everything_saveable), *to_fg((X, Y)))
    assert sorted(_sans_site(fg)) == sorted(_sans_site(_printed(fungrad, _mlp(fnp, fungrad),
                                                                *to_fg((X, Y)))))


def _named(lib, api):
    def g(x):
        a = api.ad_checkpoint.checkpoint_name(lib.sin(x), "a")
        return lib.sum(lib.sin(a))
    return g


def test_print_saved_residuals_names():
    fg, ref = _both(_named, X)
    assert fg == ref
    fg, ref = _both(lambda lib, api: api.checkpoint(
        _named(lib, api), policy=api.checkpoint_policies.save_only_these_names("a")), X)
    assert _sans_site(fg) == _sans_site(ref)
    assert "f32[3,3] named 'a' from " in fg


def test_print_saved_residuals_jit_and_argument_names():
    fg, ref = _both(lambda lib, api: api.jit(_mlp(lib, api)), X, Y)
    assert fg == ref  # "output of jitted function 'f' from " (no user line inside)
    fg, ref = _both(lambda lib, api: lambda x: api.jit(lib.sin)(x) * 2.0, X)
    assert fg == [line for line in ref if line != "f32[] from a literal"]

    def h(lib, api):
        return lambda *args, **kw: lib.sum(lib.sin(args[0]["a"][1]) * kw["k"] * args[1])
    x = X[0]
    fg, ref = _both(h, {"a": (x, x)}, x, k=x)
    assert fg == ref
    assert fg[:2] == ["f32[3] from the argument args[1]", "f32[3] from the argument kw['k']"]
    fg, ref = _both(lambda lib, api: lambda a, b=2.0: lib.sum(a * b), x, b=x)
    assert fg == ref == ["f32[3] from the argument a", "f32[3] from the argument b"]


def test_print_saved_residuals_constants_and_nothing():
    c = np.arange(3.0, dtype=np.float32)
    fg, ref = _both(lambda lib, api: lambda a: a * c, X[0])
    assert fg == ref == ["f32[3] from a constant"]
    for make in (lambda lib, api: lambda a: a, lambda lib, api: lib.sum):
        assert _both(make, X[0]) == ([], [])


# --------------------------------------------------------------------------- policy answers

def test_policy_answers():
    assert not fac.Recompute and fac.Saveable and fac.Offloadable("device", "pinned_host")
    assert fac.Offloadable("device", "pinned_host") == ("device", "pinned_host")
    assert fac.Offloadable._fields == jax.ad_checkpoint.Offloadable._fields
    p = fungrad.checkpoint_policies.save_and_offload_only_these_names(
        names_which_can_be_saved=["a"], names_which_can_be_offloaded=["b"],
        offload_src="device", offload_dst="pinned_host")
    name_p = fungrad.transforms.checkpoint.name_p
    assert p(name_p, name="a") is fac.Saveable
    assert p(name_p, name="b") == fac.Offloadable("device", "pinned_host")
    assert p(name_p, name="c") is fac.Recompute
    with pytest.raises(ValueError, match="should be exclusive"):
        fungrad.checkpoint_policies.save_and_offload_only_these_names(
            names_which_can_be_saved=["a"], names_which_can_be_offloaded=["a"],
            offload_src="device", offload_dst="pinned_host")
    both = fungrad.checkpoint_policies.save_from_both_policies(p, p)
    with pytest.raises(ValueError, match="should be a boolean"):
        both(name_p, name="a")


def _policy_cases(api):
    cp, ac = api.checkpoint_policies, api.ad_checkpoint
    return {
        "offload_names": cp.save_and_offload_only_these_names(
            names_which_can_be_saved=["a"], names_which_can_be_offloaded=["b"],
            offload_src="device", offload_dst="pinned_host"),
        "offload_dots": cp.offload_dot_with_no_batch_dims("device", "pinned_host"),
        "both": cp.save_from_both_policies(cp.dots_saveable, cp.save_only_these_names("b")),
        "answers": lambda prim, *_, **__: ac.Saveable if prim.name == "sin" else ac.Recompute,
    }


def _two_names(lib, api):
    def f(w, x):
        a = api.ad_checkpoint.checkpoint_name(lib.sin(x @ w), "a")
        b = api.ad_checkpoint.checkpoint_name(lib.cos(a @ w), "b")
        return lib.sum(lib.tanh(b) * a)
    return f


@pytest.mark.parametrize("case", ["offload_names", "offload_dots", "both", "answers"])
def test_policies_grad_and_saved_residuals(case):
    def make(lib, api):
        return api.checkpoint(_two_names(lib, api), policy=_policy_cases(api)[case])
    args = (X, X[:2])
    assert_same(fungrad.grad(make(fnp, fungrad), argnums=(0, 1))(*to_fg(args)),
                jax.grad(make(jnp, jax), argnums=(0, 1))(*to_jax(args)), GRAD_TOL,
                check_weak=False)
    fg, ref = _both(make, *args)
    # jax offloads (host copies: ``f32<host>[2,3] output of device_put``); fungrad saves
    # the values themselves: as many, of the same types.
    assert sorted(line.split()[0] for line in fg) == \
        sorted(line.split()[0].replace("<host>", "") for line in ref), (fg, ref)


def test_policy_bad_answer():
    f = fungrad.checkpoint(fnp.sin, policy=lambda *_, **__: fac.Offloadable)
    with pytest.raises(TypeError, match="instantiated `Offloadable"):
        fungrad.grad(lambda x: f(fnp.sin(x)).sum())(fnp.ones(2))


# --------------------------------------------------------------------------- custom_derivatives

def test_zero_from_primal():
    tree = {"w": np.ones((2,), np.float32), "n": np.int32(3)}
    for sym in (False, True):
        fg = fcd.zero_from_primal(to_fg(tree), symbolic_zeros=sym)
        ref = jax.custom_derivatives.zero_from_primal(to_jax(tree), symbolic_zeros=sym)
        if sym:
            assert [(z.shape, z.dtype) for z in fungrad.tree.leaves(
                fg, is_leaf=lambda z: isinstance(z, fcd.SymbolicZero))] == \
                [(z.shape, z.dtype) for z in jax.tree.leaves(
                    ref, is_leaf=lambda z: isinstance(z, jax.custom_derivatives.SymbolicZero))]
        else:
            assert_same(fg, ref)


def test_custom_vjp_primal_tree_values():
    P = fcd.CustomVJPPrimal
    assert fcd.custom_vjp_primal_tree_values({"a": P(1.0, True), "b": [P(2, False)]}) == \
        jax.custom_derivatives.custom_vjp_primal_tree_values(
            {"a": jax.custom_derivatives.CustomVJPPrimal(1.0, True),
             "b": [jax.custom_derivatives.CustomVJPPrimal(2, False)]})
    with pytest.raises(TypeError, match="unexpected leaf type"):
        fcd.custom_vjp_primal_tree_values([1.0])


def _symbolic(api, cd, lib, log):
    @api.custom_vjp
    def f(x, y):
        return lib.sin(x) * y, y

    def fwd(x, y):
        log.append(("fwd", x.perturbed, y.perturbed))
        x, y = cd.custom_vjp_primal_tree_values((x, y))
        return f(x, y), (lib.cos(x), lib.sin(x), y)

    def bwd(res, cts):
        cos_x, sin_x, y = res
        ct, ct_y = cts
        log.append(("bwd", isinstance(ct_y, cd.SymbolicZero)))
        return cos_x * ct * y, (sin_x * ct if isinstance(ct_y, cd.SymbolicZero)
                                else sin_x * ct + ct_y)
    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


def test_custom_vjp_symbolic_zeros():
    logs = {}
    outs = {}
    for name, api, cd, lib in (("fg", fungrad, fcd, fnp), ("jax", jax, jax.custom_derivatives,
                                                             jnp)):
        log = logs[name] = []
        f = _symbolic(api, cd, lib, log)
        x, y = (to_fg if name == "fg" else to_jax)((np.float32(0.5), np.float32(2.0)))
        outs[name] = [api.grad(lambda x, y: f(x, y)[0], argnums=(0, 1))(x, y),
                      api.grad(lambda x: f(x, y)[0])(x),
                      api.grad(lambda x, y: sum(f(x, y)), argnums=1)(x, y)]
    assert_same(outs["fg"], outs["jax"], GRAD_TOL, check_weak=False)
    assert logs["fg"] == logs["jax"]


def _transpose(api, f, x_example):
    return lambda y: api.linear_transpose(f, x_example)(y)[0]


def test_linear_call():
    results = {}
    for name, api, lc in (("fg", fungrad, fcd.linear_call),
                          ("jax", jax, jax.custom_derivatives.linear_call)):
        def div_add(x, denom):
            return x + lc(lambda r, x: x / r, lambda r, t: t / r, denom, x)

        def custom_id(x):
            return lc(lambda _, x: x, lambda _, t: 7.0, (), x)
        t1 = _transpose(api, custom_id, 1.0)
        results[name] = [div_add(9.0, 3.0), _transpose(api, partial(div_add, denom=3.0), 1.0)(18.0),
                         custom_id(1.0), t1(1.0), _transpose(api, t1, 1.0)(1.0),
                         api.grad(lambda x: div_add(x, 3.0) ** 2)(2.0),
                         api.jvp(lambda x: div_add(x, 3.0), (2.0,), (1.0,)),
                         api.jit(api.grad(lambda x: custom_id(x) * 2.0))(1.0)]
    # jax's transpose of ``lambda _, t: 7.0`` is a Python float (float64 for NumPy)
    assert_same(results["fg"], fungrad.tree.map(np.float32, results["jax"]), check_weak=False)


def test_linear_call_errors():
    bad = lambda x: fcd.linear_call(lambda r, x: x, lambda r, t: (t, t), (), x)  # noqa: E731
    with pytest.raises(TypeError, match="transpose output pytree structure"):
        fungrad.grad(bad)(1.0)



def test_linear_call_vmap():
    # jax has no batching rule for linear_call: the reference is a loop.
    def f(r, x):
        return fcd.linear_call(lambda r, x: x * r, lambda r, t: 3.0 * t * r, r, x)
    r, x = fnp.arange(1.0, 4.0), fnp.ones(3)
    np.testing.assert_allclose(fungrad.vmap(f)(r, x), r * x)
    g = fungrad.vmap(fungrad.grad(lambda r, x: f(r, x) * 2.0, argnums=1))(r, x)
    np.testing.assert_allclose(g, 6.0 * r)
    g = fungrad.grad(lambda x: fungrad.vmap(f)(r, x).sum())(x)
    np.testing.assert_allclose(g, 3.0 * r)


# --------------------------------------------------------------------------- stages, dtypes

def test_arg_info():
    info = fstages.ArgInfo(fungrad.ShapeDtypeStruct((2,), fnp.float32).aval, True)
    ref = jax.stages.ArgInfo(jax.ShapeDtypeStruct((2,), jnp.float32), True)
    assert (info.shape, info.dtype, info.donated) == (ref.shape, ref.dtype, ref.donated)
    with pytest.raises(TypeError, match="No shape attribute"):
        fstages.ArgInfo(1, False).shape
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.donated = False


def test_lowered_args_info():
    def make(api, lib):
        return api.jit(lambda x, y, *, z: x, donate_argnums=1).lower(
            lib.ones(3), {"a": lib.ones(2, lib.int32)}, z=1.0)
    for fg_stage, ref_stage in ((make(fungrad, fnp), make(jax, jnp)),
                                (make(fungrad, fnp).compile(), make(jax, jnp).compile())):
        fg, ref = fg_stage.args_info, ref_stage.args_info
        assert fungrad.tree.structure(fg) == fungrad.tree.structure(ref)
        assert [(a.shape, a.dtype, a.donated, a._aval.weak_type)
                for a in fungrad.tree.leaves(fg)] == \
            [(a.shape, a.dtype, a.donated, a._aval.weak_type) for a in jax.tree.leaves(ref)]
    for static in ((), (1,)):  # positional arguments only: jit's fast path
        fg = fungrad.jit(lambda x, n: x * 2, static_argnums=static).lower(fnp.ones(3), 2)
        ref = jax.jit(lambda x, n: x * 2, static_argnums=static).lower(jnp.ones(3), 2)
        assert str(fungrad.tree.structure(fg.args_info)).split("(", 1)[1] == \
            str(jax.tree.structure(ref.args_info)).split("(", 1)[1]


def test_extended_dtypes():
    for x, y in ((fdtypes.prng_key, fdtypes.extended), (fnp.float32, fdtypes.extended),
                 (fdtypes.extended, fnp.floating), (fdtypes.prng_key, fnp.generic)):
        jx = {fdtypes.prng_key: jax.dtypes.prng_key, fdtypes.extended: jax.dtypes.extended,
              fnp.float32: jnp.float32, fnp.floating: jnp.floating, fnp.generic: jnp.generic}
        assert fnp.issubdtype(x, y) == jnp.issubdtype(jx[x], jx[y]), (x, y)


def test_key_dtype_is_prng_key():
    k, jk = fungrad.random.key(0), jax.random.key(0)
    for a in (fdtypes.prng_key, fdtypes.extended, fnp.floating, fnp.uint32):
        ja = {fdtypes.prng_key: jax.dtypes.prng_key, fdtypes.extended: jax.dtypes.extended,
              fnp.floating: jnp.floating, fnp.uint32: jnp.uint32}[a]
        assert fnp.issubdtype(k.dtype, a) == jnp.issubdtype(jk.dtype, ja)
    assert fnp.issubdtype(k.dtype, k.dtype)


# --------------------------------------------------------------------------- Shard

def test_shards():
    x, jx = fnp.arange(6.0).reshape(2, 3), jnp.arange(6.0).reshape(2, 3)
    (s,), (js,) = x.addressable_shards, jx.addressable_shards
    assert isinstance(s, Shard)
    assert (s.index, s.replica_id) == (js.index, js.replica_id)
    assert s.device == x.device and s.data is x
    assert len(x.global_shards) == len(jx.global_shards) == 1
    assert x.addressable_data(0) is x
    assert fnp.float32(1.0).addressable_shards[0].index == () == \
        jnp.float32(1.0).addressable_shards[0].index
    assert repr(s).startswith("Shard(device=")
