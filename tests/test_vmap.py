"""vmap against jax.vmap: in_axes/out_axes (ints, None, negative, pytree prefixes), keyword
arguments, nested vmaps, axis_size, named-axis collectives, and vmap's errors."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from harness import GRAD_TOL, assert_same, to_fg, to_jax

RNG = np.random.default_rng(0)


def r(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


def both(make):
    """The same test function for fungrad and for jax: make(lib, api, lax)."""
    return make(fnp, fungrad, fungrad.lax), make(jnp, jax, jax.lax)


def check(make, args, **vmap_kw):
    (f, jf), args = both(make), tuple(args)
    assert_same(fungrad.vmap(f, **vmap_kw)(*to_fg(args)), jax.vmap(jf, **vmap_kw)(*to_jax(args)),
                check_weak=False)


# --------------------------------------------------------------------------- axes

def _binary(lib, api, lax_):
    return lambda x, y: lib.sin(x) * y + x


AXES_CASES = [  # (in_axes, out_axes, shapes)
    (0, 0, [(4, 3), (4, 3)]),
    ((1, None), 0, [(3, 4), (3,)]),
    ((-1, 0), 1, [(3, 4), (4, 3)]),
    ((None, -2), -1, [(3,), (4, 3)]),
    ((0, 1), -1, [(4, 2, 3), (2, 4, 3)]),
    ([0, None], 2, [(4, 2, 3), (2, 3)]),
]


@pytest.mark.parametrize("in_axes,out_axes,shapes", AXES_CASES)
def test_in_and_out_axes(in_axes, out_axes, shapes):
    check(_binary, [r(*s) for s in shapes], in_axes=in_axes, out_axes=out_axes)


def test_pytree_prefixes():
    def make(lib, api, lax_):
        return lambda p, x: ({"out": lib.tanh(p["w"] * x + p["b"])}, p["b"] * 2.0)
    params = {"w": r(3), "b": r(5, 3)}
    check(make, (params, r(5, 3)), in_axes=({"w": None, "b": 0}, 0), out_axes=({"out": 1}, 0))
    check(make, (params, r(3, 5)), in_axes=({"w": None, "b": 0}, 1), out_axes=0)
    check(make, ({"w": r(4, 3), "b": r(4, 3)}, r(3)), in_axes=(0, None))


def test_unbatched_output_and_out_axes_none():
    def make(lib, api, lax_):
        return lambda x, y: (x * 2.0, y + 1.0)
    check(make, (r(4, 3), r(3)), in_axes=(0, None), out_axes=(0, None))
    check(make, (r(4, 3), r(3)), in_axes=(0, None), out_axes=0)  # broadcast


def test_keyword_arguments_are_mapped():
    def make(lib, api, lax_):
        return lambda x, scale=1.0: x * scale
    f, jf = both(make)
    x, scale = r(4, 3), r(4, 1)
    assert_same(fungrad.vmap(f)(to_fg(x), scale=to_fg(scale)),
                jax.vmap(jf)(to_jax(x), scale=to_jax(scale)), check_weak=False)


def test_axis_size_with_nothing_mapped():
    def make(lib, api, lax_):
        return lambda x: x * 3.0
    check(make, (r(2),), in_axes=None, axis_size=3)


def test_nested_vmaps():
    def make(lib, api, lax_):
        inner = api.vmap(lambda x, y: lib.sum(x * y), in_axes=(0, None))
        return api.vmap(inner, in_axes=(None, 1), out_axes=-1)
    check(make, (r(2, 4, 3), r(3, 5)), in_axes=(0, None))

    def outer_product(lib, api, lax_):
        return api.vmap(api.vmap(lambda a, b: a * b, (None, 0)), (0, None))
    f, jf = both(outer_product)
    a, b = r(3), r(4)
    assert_same(f(*to_fg((a, b))), jf(*to_jax((a, b))), check_weak=False)


def test_vmap_of_jacobian_and_grad_of_vmap():
    def make(lib, api, lax_):
        return api.jacrev(lambda x: lib.tanh(x) * lib.sum(x ** 2))
    check(make, (r(4, 3),))

    def loss(lib, api, lax_):
        return api.grad(lambda w, xs: lib.sum(api.vmap(lambda x: lib.sin(w * x))(xs)))
    f, jf = both(loss)
    w, xs = r(3), r(5, 3)
    assert_same(f(*to_fg((w, xs))), jf(*to_jax((w, xs))), GRAD_TOL)


# --------------------------------------------------------------------------- collectives

COLLECTIVES = {
    "psum": lambda lib, api, lax_: (lambda x: lax_.psum(x, "i")),
    "pmean": lambda lib, api, lax_: (lambda x: lax_.pmean(x, "i")),
    "pmax": lambda lib, api, lax_: (lambda x: lax_.pmax(x, "i")),
    "pmin": lambda lib, api, lax_: (lambda x: lax_.pmin(x, "i")),
    "axis_index": lambda lib, api, lax_: (lambda x: x * lax_.axis_index("i")),
    "psum_unbatched": lambda lib, api, lax_: (lambda x: x + lax_.psum(2.0, "i")),
    "normalize": lambda lib, api, lax_: (lambda x: x / lax_.psum(lib.abs(x), "i")),
    "psum_pytree": lambda lib, api, lax_: (lambda x: lax_.psum({"a": x, "b": (x * 2.0,)}, "i")),
    "all_gather": lambda lib, api, lax_: (lambda x: lax_.all_gather(x, "i")),
    "all_gather_axis1": lambda lib, api, lax_: (lambda x: lax_.all_gather(x, "i", axis=1)),
    "all_gather_tiled": lambda lib, api, lax_: (lambda x: lax_.all_gather(x, "i", tiled=True)),
}


@pytest.mark.parametrize("name", list(COLLECTIVES))
def test_collectives(name):
    x = r(4, 3)
    check(COLLECTIVES[name], (x,), axis_name="i")
    check(COLLECTIVES[name], (x.T,), in_axes=1, axis_name="i")


@pytest.mark.parametrize("name", ["psum", "pmean", "normalize", "axis_index", "all_gather",
                                  "all_gather_tiled"])
def test_collectives_differentiate(name):
    def make(lib, api, lax_):
        f = COLLECTIVES[name](lib, api, lax_)
        per_example = api.grad(lambda x, w: lib.sum(lib.sin(f(x * w))), argnums=(0, 1))
        return api.vmap(per_example, in_axes=(0, None), axis_name="i")
    f, jf = both(make)
    x, w = r(4, 3), r(3)
    assert_same(f(*to_fg((x, w))), jf(*to_jax((x, w))), GRAD_TOL)

    def outer_grad(lib, api, lax_):
        f = COLLECTIVES[name](lib, api, lax_)
        return api.grad(lambda x: lib.sum(lib.sin(api.vmap(f, axis_name="i")(x))))
    f, jf = both(outer_grad)
    assert_same(f(to_fg(x)), jf(to_jax(x)), GRAD_TOL)


@pytest.mark.parametrize("op,reduce", [("pmax", jnp.max), ("pmin", jnp.min)])
def test_pmax_pmin_gradient_picks_the_extreme_member(op, reduce):
    # jax has no JVP for pmax/pmin; compare with the same function written with a reduction.
    x = r(4, 3)
    x[1, 0] = x[2, 0] = x[:, 0].max() + 1  # a tie: the gradient is split
    f = lambda xs: fnp.sum(fnp.sin(fungrad.vmap(lambda v: getattr(lax, op)(v, "i") * v,  # noqa
                                                axis_name="i")(xs)))
    ref = lambda xs: jnp.sum(jnp.sin(reduce(xs, 0) * xs))  # noqa: E731
    assert_same(fungrad.grad(f)(to_fg(x)), jax.grad(ref)(to_jax(x)), GRAD_TOL)


def test_nested_axis_names_and_tuples():
    def make(lib, api, lax_):
        def f(x):
            return (lax_.psum(x, "i"), lax_.psum(x, "j"), lax_.psum(x, ("i", "j")),
                    lax_.pmax(x, ("j", "i")), lax_.axis_index("i") * 10 + lax_.axis_index("j"))
        return api.vmap(api.vmap(f, axis_name="j"), axis_name="i")
    f, jf = both(make)
    x = r(3, 4, 2)
    assert_same(f(to_fg(x)), jf(to_jax(x)), check_weak=False)


def test_collectives_inside_custom_rules_and_checkpoint():
    def make(lib, api, lax_):
        def f(x):
            return api.checkpoint(lambda v: v / lax_.psum(lib.exp(v), "i"))(x) + \
                lib.sin(lax_.pmean(x, "i"))
        return api.vmap(api.grad(lambda x: lib.sum(f(x))), axis_name="i")
    f, jf = both(make)
    x = r(4, 3)
    assert_same(f(to_fg(x)), jf(to_jax(x)), GRAD_TOL)


def test_axis_size():
    x = r(5)
    got = fungrad.vmap(lambda x: x * lax.axis_size("i"), axis_name="i")(to_fg(x))
    want = jax.vmap(lambda x: x * jax.lax.axis_size("i"), axis_name="i")(to_jax(x))
    assert_same(got, want, check_weak=False)


@pytest.mark.parametrize("op", [lambda x: lax.psum(x, "i"), lambda x: lax.axis_index("i"),
                                lambda x: lax.pmean(x, ("i", "k")),
                                lambda x: lax.all_gather(x, "i")])
def test_unbound_axis_name(op):
    with pytest.raises(NameError, match="unbound axis name: i"):
        op(to_fg(r(3)))
    with pytest.raises(NameError, match="unbound axis name"):
        fungrad.vmap(op, axis_name="j")(to_fg(r(2, 3)))


# --------------------------------------------------------------------------- errors

def test_errors():
    f = lambda x, y: x + y  # noqa: E731
    with pytest.raises(ValueError, match="inconsistent sizes"):
        fungrad.vmap(f)(to_fg(r(3)), to_fg(r(4)))
    with pytest.raises(ValueError, match="rank should be at least 3"):
        fungrad.vmap(lambda x: x, in_axes=2)(to_fg(r(3)))
    with pytest.raises(ValueError, match="in_axes"):
        fungrad.vmap(lambda x: x, in_axes=(0, 0))(to_fg(r(3)))
    with pytest.raises(TypeError, match="in_axes"):
        fungrad.vmap(lambda x: x, in_axes="a")(to_fg(r(3)))
    with pytest.raises(ValueError, match="out_axes"):
        fungrad.vmap(lambda x: x, out_axes=None)(to_fg(r(3)))
    with pytest.raises(ValueError):
        fungrad.vmap(lambda x: x, in_axes=None)(to_fg(r(3)))  # nothing mapped, no axis_size
