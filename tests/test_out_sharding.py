"""``out_sharding=`` (``sharding=`` for ``lax.full``/``full_like``) on every ``jax.numpy``,
``jax.random`` and ``jax.lax`` function that takes it.

fungrad puts each array whole on one device, so the keyword names a device: ``None``
changes nothing, a ``Device`` or ``SingleDeviceSharding`` commits an eager result there
(under ``jit`` the one device of the program holds it), and a bare ``PartitionSpec`` or a
mesh axis name is an error naming the function. Values, shapes, dtypes and weak types are
those of jax's result with ``out_sharding=None``, eagerly and under ``fungrad.jit``.
"""
from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
import types
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.backends import SingleDeviceSharding
from harness import QUICK_COMPILE, assert_same, compare, rand, to_fg

RNG = np.random.default_rng(5)
FG = types.SimpleNamespace(np=jnp, lax=fungrad.lax, random=fungrad.random)
JAX = types.SimpleNamespace(np=jnp_ref, lax=jax.lax, random=jax.random)
DEVICE = fungrad.devices("cpu")[0]
SPECS = {"none": None, "device": DEVICE, "sharding": SingleDeviceSharding(DEVICE)}


class Case(NamedTuple):
    """``call(lib, keywords, *args)`` runs the function of ``lib`` (``FG`` or ``JAX``) with
    the placement ``keywords``; ``name`` is how errors name it; ``arg`` is its keyword."""
    name: str
    call: Callable[..., Any]
    args: tuple = ()
    arg: str = "out_sharding"


X = rand(RNG, (2, 3))
M = rand(RNG, (3, 3))
V = rand(RNG, (6,), low=0.5, high=2.0)
COUNTS = np.array([0, 2, 2, 5, 1], np.int32)
GROUPS = np.array([2, 1, 3], np.int32)
COV = np.array([[2.0, 0.5], [0.5, 1.0]], np.float32)


def _ragged_dnums(lib):
    return lib.lax.RaggedDotDimensionNumbers(
        dot_dimension_numbers=(((1,), (1,)), ((), ())), lhs_ragged_dimensions=(0,),
        rhs_group_dimensions=(0,))


def _key(lib):
    return lib.random.PRNGKey(3)


NUMPY = [
    Case("jnp.zeros", lambda m, kw: m.np.zeros((2, 3), **kw)),
    Case("jnp.ones", lambda m, kw: m.np.ones((2, 3), np.int32, **kw)),
    Case("jnp.empty", lambda m, kw: m.np.empty((2,), **kw)),
    Case("jnp.full", lambda m, kw: m.np.full((2, 3), 1.5, **kw)),
    Case("jnp.zeros_like", lambda m, kw, x: m.np.zeros_like(x, **kw), (X,)),
    Case("jnp.ones_like", lambda m, kw, x: m.np.ones_like(x, **kw), (X,)),
    Case("jnp.full_like", lambda m, kw, x: m.np.full_like(x, 7, **kw), (X,)),
    Case("jnp.arange", lambda m, kw: m.np.arange(5, **kw)),
    Case("jnp.array", lambda m, kw, x: m.np.array(x, **kw), (X,)),
    Case("jnp.asarray", lambda m, kw, x: m.np.asarray(x, **kw), (X,)),
    Case("jnp.bincount", lambda m, kw, c: m.np.bincount(c, length=7, **kw), (COUNTS,)),
    Case("jnp.broadcast_to", lambda m, kw, v: m.np.broadcast_to(v, (2, 6), **kw), (V,)),
    Case("jnp.dot", lambda m, kw, a, b: m.np.dot(a, b, **kw), (X, M)),
    Case("jnp.einsum", lambda m, kw, a, b: m.np.einsum("ij,jk->ik", a, b, **kw), (X, M)),
    Case("jnp.matmul", lambda m, kw, a, b: m.np.matmul(a, b, **kw), (X, M)),
    Case("jnp.tensordot", lambda m, kw, a, b: m.np.tensordot(a, b, 1, **kw), (X, M)),
    Case("jnp.percentile", lambda m, kw, x: m.np.percentile(x, 30.0, axis=1, **kw), (X,)),
    Case("jnp.ravel", lambda m, kw, x: m.np.ravel(x, order="F", **kw), (X,)),
    Case("jnp.repeat", lambda m, kw, x: m.np.repeat(x, 2, axis=0, **kw), (X,)),
    Case("jnp.reshape", lambda m, kw, x: m.np.reshape(x, (3, 2), **kw), (X,)),
    Case("jnp.reshape", lambda m, kw, x: m.np.asarray(x).reshape(3, 2, **kw), (X,)),  # method
    Case("jnp.ravel", lambda m, kw, x: m.np.asarray(x).flatten(**kw), (X,)),
]

RANDOM = [
    Case("random.ball", lambda m, kw: m.random.ball(_key(m), 3, shape=(2,), **kw)),
    Case("random.bernoulli", lambda m, kw: m.random.bernoulli(_key(m), 0.3, (5,), **kw)),
    Case("random.beta", lambda m, kw: m.random.beta(_key(m), 2.0, 3.0, (4,), **kw)),
    Case("random.bits", lambda m, kw: m.random.bits(_key(m), (4,), **kw)),
    Case("random.categorical", lambda m, kw, x: m.random.categorical(_key(m), x, **kw), (X,)),
    Case("random.cauchy", lambda m, kw: m.random.cauchy(_key(m), (4,), **kw)),
    Case("random.chisquare", lambda m, kw: m.random.chisquare(_key(m), 3.0, (4,), **kw)),
    Case("random.dirichlet",
         lambda m, kw: m.random.dirichlet(_key(m), np.array([1.0, 2.0, 3.0]), (2,), **kw)),
    Case("random.exponential", lambda m, kw: m.random.exponential(_key(m), (4,), **kw)),
    Case("random.f", lambda m, kw: m.random.f(_key(m), 3.0, 4.0, (4,), **kw)),
    Case("random.gamma", lambda m, kw: m.random.gamma(_key(m), 2.5, (4,), **kw)),
    Case("random.generalized_normal",
         lambda m, kw: m.random.generalized_normal(_key(m), 1.5, (4,), **kw)),
    Case("random.geometric", lambda m, kw: m.random.geometric(_key(m), 0.3, (4,), **kw)),
    Case("random.gumbel", lambda m, kw: m.random.gumbel(_key(m), (4,), **kw)),
    Case("random.laplace", lambda m, kw: m.random.laplace(_key(m), (4,), **kw)),
    Case("random.loggamma", lambda m, kw: m.random.loggamma(_key(m), 0.5, (4,), **kw)),
    Case("random.logistic", lambda m, kw: m.random.logistic(_key(m), (4,), **kw)),
    Case("random.lognormal", lambda m, kw: m.random.lognormal(_key(m), 0.5, (4,), **kw)),
    Case("random.maxwell", lambda m, kw: m.random.maxwell(_key(m), (4,), **kw)),
    Case("random.multivariate_normal",
         lambda m, kw: m.random.multivariate_normal(_key(m), np.zeros(2, np.float32), COV, (3,),
                                                    **kw)),
    Case("random.normal", lambda m, kw: m.random.normal(_key(m), (2, 3), **kw)),
    Case("random.orthogonal", lambda m, kw: m.random.orthogonal(_key(m), 3, **kw)),
    Case("random.pareto", lambda m, kw: m.random.pareto(_key(m), 2.0, (4,), **kw)),
    Case("random.permutation", lambda m, kw, v: m.random.permutation(_key(m), v, **kw), (V,)),
    Case("random.poisson", lambda m, kw: m.random.poisson(_key(m), 4.0, (4,), **kw)),
    Case("random.rademacher", lambda m, kw: m.random.rademacher(_key(m), (4,), **kw)),
    Case("random.randint", lambda m, kw: m.random.randint(_key(m), (4,), 0, 10, **kw)),
    Case("random.rayleigh", lambda m, kw: m.random.rayleigh(_key(m), 2.0, (4,), **kw)),
    Case("random.t", lambda m, kw: m.random.t(_key(m), 5.0, (4,), **kw)),
    Case("random.triangular",
         lambda m, kw: m.random.triangular(_key(m), 0.0, 0.3, 1.0, (4,), **kw)),
    Case("random.truncated_normal",
         lambda m, kw: m.random.truncated_normal(_key(m), -1.0, 2.0, (4,), **kw)),
    Case("random.uniform", lambda m, kw: m.random.uniform(_key(m), (2, 3), **kw)),
    Case("random.wald", lambda m, kw: m.random.wald(_key(m), 1.5, (4,), **kw)),
]

LAX = [
    Case("lax.broadcast", lambda m, kw, x: m.lax.broadcast(x, (2,), **kw), (X,)),
    Case("lax.broadcast_in_dim",
         lambda m, kw, v: m.lax.broadcast_in_dim(v, (2, 6), (1,), **kw), (V,)),
    Case("lax.broadcasted_iota",
         lambda m, kw: m.lax.broadcasted_iota(np.int32, (2, 3), 1, **kw)),
    Case("lax.conv_general_dilated",
         lambda m, kw, x, w: m.lax.conv_general_dilated(x, w, (1,), "SAME", **kw),
         (rand(RNG, (1, 2, 5)), rand(RNG, (3, 2, 2)))),
    Case("lax.dot", lambda m, kw, a, b: m.lax.dot(a, b, **kw), (X, M)),
    Case("lax.dot_general",
         lambda m, kw, a, b: m.lax.dot_general(a, b, (((1,), (0,)), ((), ())), **kw), (X, M)),
    Case("lax.empty", lambda m, kw: m.lax.empty((2, 3), np.float32, **kw)),
    Case("lax.full", lambda m, kw: m.lax.full((2, 3), 2.0, np.float32, **kw), arg="sharding"),
    Case("lax.full_like", lambda m, kw, x: m.lax.full_like(x, 3, **kw), (X,), arg="sharding"),
    Case("lax.ragged_dot",
         lambda m, kw, a, b, g: m.lax.ragged_dot(a, b, g, **kw),
         (rand(RNG, (6, 2)), rand(RNG, (3, 2, 4)), GROUPS)),
    Case("lax.ragged_dot_general",
         lambda m, kw, a, b, g: m.lax.ragged_dot_general(a, b, g, _ragged_dnums(m), **kw),
         (rand(RNG, (6, 2)), rand(RNG, (3, 2, 4)), GROUPS)),
    Case("lax.reduce",
         lambda m, kw, x: m.lax.reduce(x, np.float32(0), m.lax.add, (1,), **kw), (X,)),
    Case("lax.reduce_sum", lambda m, kw, x: m.lax.reduce_sum(x, (0,), **kw), (X,)),
    Case("lax.reshape", lambda m, kw, x: m.lax.reshape(x, (3, 2), (1, 0), **kw), (X,)),
    Case("lax.rng_bit_generator", lambda m, kw, k: m.lax.rng_bit_generator(k, (2, 3), **kw),
         (np.array([1, 2, 3, 4], np.uint32),)),
]

CASES = NUMPY + RANDOM + LAX
IDS = [f"{c.name}-{i}" for i, c in enumerate(CASES)]


@functools.lru_cache(maxsize=None)
def _reference(index: int) -> Any:
    """jax's result of case ``index`` with no placement (computed once for every spec), from
    one quickly compiled program: eagerly, jax compiles the samplers' inner functions with
    every optimisation, which was most of these tests' time. The inputs go in as the NumPy
    arrays they are (converting each first compiles a program too)."""
    case = CASES[index]
    program = jax.jit(lambda *args: case.call(JAX, {}, *args), compiler_options=QUICK_COMPILE)
    return program(*case.args)


def _placing(case: Case, spec: Any) -> Callable[..., Any]:
    """The fungrad function of ``case`` with ``spec`` given (no keyword for None)."""
    return lambda *args: case.call(FG, {} if spec is None else {case.arg: spec}, *args)


def _jax_names(module: Any, prefix: str) -> set[str]:
    names = set()
    for name in dir(module):
        try:
            params = inspect.signature(getattr(module, name)).parameters
        except (TypeError, ValueError):
            continue
        if "out_sharding" in params or "sharding" in params:
            names.add(f"{prefix}.{name}")
    return names


def test_the_table_covers_every_function_jax_gives_the_keyword():
    """A function of jax's gaining the keyword fails here until it is in ``CASES``."""
    want = (_jax_names(jnp_ref, "jnp") | _jax_names(jax.random, "random")
            | _jax_names(jax.lax, "lax"))
    assert want == {c.name for c in CASES}


@pytest.mark.parametrize("case", list({c.name: c for c in CASES}.values()),
                         ids=lambda c: c.name)
def test_signature_is_jaxs(case):
    """The keyword's name, kind, default and (when positional) position are jax's."""
    prefix, name = case.name.split(".")
    libs = {"jnp": (jnp, jnp_ref), "random": (fungrad.random, jax.random),
            "lax": (fungrad.lax, jax.lax)}[prefix]
    got, want = (inspect.signature(getattr(m, name)).parameters for m in libs)
    assert (got[case.arg].kind, got[case.arg].default) == (want[case.arg].kind, None)
    if want[case.arg].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        assert list(got).index(case.arg) == list(want).index(case.arg)


@pytest.mark.parametrize("spec", list(SPECS), ids=list(SPECS))
@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_value_is_jaxs_and_the_result_is_placed(index, spec):
    case, placement = CASES[index], SPECS[spec]
    fn = _placing(case, placement)
    compare(fn, lambda *a: case.call(JAX, {}, *a), *case.args, ref_out=_reference(index))
    for out in (fn(*to_fg(case.args)), fungrad.jit(fn)(*to_fg(case.args))):
        for leaf in jax.tree_util.tree_leaves(out):
            assert leaf.device == DEVICE
    for leaf in jax.tree_util.tree_leaves(fn(*to_fg(case.args))):
        assert leaf.committed == (placement is not None), (case.name, spec)


BAD = [(jax.sharding.PartitionSpec("x"), TypeError), ("data", ValueError), (3, TypeError)]


@pytest.mark.parametrize("bad,error", BAD, ids=["PartitionSpec", "axis-name", "int"])
@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_a_value_naming_no_device_is_an_error(index, bad, error):
    """Eagerly and while ``jit`` traces, with the function and the keyword named."""
    case = CASES[index]
    fn = _placing(case, bad)
    message = f"{case.name}: {case.arg} must be None, a Device, a Sharding"
    with pytest.raises(error, match=message):
        fn(*to_fg(case.args))
    with pytest.raises(error, match=message):
        fungrad.jit(fn)(*to_fg(case.args))


def test_a_platform_name_places_and_a_missing_device_is_named():
    out = jnp.reshape(jnp.ones(4), (2, 2), out_sharding="cpu")
    assert out.committed and out.device == DEVICE
    with pytest.raises(ValueError, match="jnp.reshape: out_sharding: no device 'cpu:7'"):
        jnp.reshape(jnp.ones(4), (2, 2), out_sharding="cpu:7")


def test_a_named_sharding_places_on_its_meshs_device():
    """What ``device_put`` does with a ``NamedSharding``: the whole array on the mesh's
    first device; a bare ``PartitionSpec`` names no device."""
    mesh = fungrad.sharding.make_mesh((1,), ("x",))
    named = fungrad.sharding.NamedSharding(mesh, fungrad.sharding.P("x"))
    out = fungrad.random.normal(fungrad.random.key(0), (4, 3), out_sharding=named)
    assert out.committed and out.device == mesh.devices.flat[0]
    with pytest.raises(TypeError, match="random.normal: out_sharding must be None"):
        fungrad.random.normal(fungrad.random.key(0), (4,), out_sharding=fungrad.sharding.P("x"))


@pytest.mark.parametrize("name", ["zeros", "full_like", "arange", "asarray"])
def test_device_and_out_sharding_together_is_an_error(name):
    args = {"zeros": (3,), "full_like": (X, 1.0), "arange": (3,), "asarray": (X,)}[name]
    with pytest.raises(ValueError, match="only one of device and out_sharding"):
        getattr(jnp, name)(*args, device=DEVICE, out_sharding=DEVICE)
    with pytest.raises(ValueError, match="Only one of `device` or `out_sharding`"):
        getattr(jnp_ref, name)(*args, device=jax.devices()[0],
                               out_sharding=jax.sharding.PartitionSpec())


def test_functions_jax_gives_no_keyword_refuse_it():
    """``device=`` alone on the creation functions jax gives no ``out_sharding``."""
    for lib in (jnp, jnp_ref):
        with pytest.raises(TypeError, match="out_sharding"):
            lib.empty_like(X, out_sharding=None)
        with pytest.raises(TypeError, match="out_sharding"):
            lib.linspace(0.0, 1.0, 3, out_sharding=None)


# ------------------------------------------------------------------ several devices

CHILD = """
import numpy as np, fungrad, fungrad.numpy as jnp
d = fungrad.devices()
key = fungrad.random.key(0)
outs = [jnp.zeros(3, out_sharding=d[2]), jnp.reshape(jnp.ones(4), (2, 2), out_sharding=d[2]),
        jnp.matmul(jnp.ones((2, 2)), jnp.ones((2, 2)), out_sharding="cpu:2"),
        fungrad.random.normal(key, (3,), out_sharding=d[2]),
        fungrad.lax.full((2,), 1.0, sharding=fungrad.backends.SingleDeviceSharding(d[2])),
        fungrad.lax.dot_general(jnp.ones(2), jnp.ones(2), (((0,), (0,)), ((), ())),
                                out_sharding=d[2])]
assert all(o.device == d[2] and o.committed for o in outs), [o.device for o in outs]
assert (outs[0] + 1).device == d[2]  # operations on it run there
moved = jnp.asarray(fungrad.device_put(np.ones(2), d[1]), copy=True, out_sharding=d[2])
assert moved.device == d[2] and np.asarray(moved).tolist() == [1.0, 1.0]
print("ok")
"""


def test_out_sharding_commits_to_another_device():
    """On three virtual CPU devices (fixed when first listed, hence a child process)."""
    env = {**os.environ, "FUNGRAD_NUM_CPU_DEVICES": "3", "FUNGRAD_PLATFORMS": "cpu",
           "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["ok"], proc.stderr


INITIALIZERS = [("zeros", lambda m: m.zeros), ("ones", lambda m: m.ones),
                ("constant", lambda m: m.constant(0.5)), ("uniform", lambda m: m.uniform()),
                ("normal", lambda m: m.normal()),
                ("truncated_normal", lambda m: m.truncated_normal()),
                ("variance_scaling", lambda m: m.glorot_uniform()),
                ("orthogonal", lambda m: m.orthogonal()),
                ("delta_orthogonal", lambda m: m.delta_orthogonal())]


@pytest.mark.parametrize("name,make", INITIALIZERS, ids=[n for n, _ in INITIALIZERS])
def test_initializers_take_out_sharding(name, make):
    """``jax.nn.initializers``' functions (and the ones their factories return) take
    ``out_sharding`` too: the same weights as jax's for the same key, placed."""
    shape = (3, 4, 4) if name == "delta_orthogonal" else (4, 4)
    init, ref = make(fungrad.nn.initializers), make(jax.nn.initializers)
    got = init(fungrad.random.PRNGKey(3), shape, out_sharding=DEVICE)
    # the float32 tolerance: orthogonal's QR runs in float64 on the host, XLA's in float32
    assert_same(got, ref(jax.random.PRNGKey(3), shape, out_sharding=None))
    assert got.committed and got.device == DEVICE
    params = inspect.signature(init).parameters
    assert params["out_sharding"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(ValueError, match=f"nn.initializers.{name}: out_sharding must be None"):
        init(fungrad.random.PRNGKey(3), shape, out_sharding="data")
