"""ppermute, pshuffle, pswapaxes, all_to_all, psum_scatter and pbroadcast under
``vmap(..., axis_name=...)`` against jax: values (eager and under ``fungrad.jit``), batch
axes, derivatives (their JVP and transpose rules run inside the vmap), nested vmaps with two
names, and the errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from harness import GRAD_TOL, assert_same, compare, to_fg, to_jax

RNG = np.random.default_rng(0)
N = 4  # the named axis size


def r(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


def both(make):
    """The same test function for fungrad and for jax: ``make(lib, api, lax)``."""
    return make(fnp, fungrad, fungrad.lax), make(jnp, jax, jax.lax)


def check_vmap(make, x, in_axes=0):
    """``vmap(f, axis_name='i')`` against jax, eager and under ``fungrad.jit``."""
    f, jf = both(make)
    compare(fungrad.vmap(f, in_axes=in_axes, axis_name="i"),
            jax.vmap(jf, in_axes=in_axes, axis_name="i"), x, check_weak=False)


def _pbroadcast(lib, lax, x, source, name="i"):
    """fungrad's pbroadcast; for jax, its documented equivalent (jax's own vmap rule fails
    on jax arrays: it calls ``take`` with a list)."""
    if lib is fnp:
        return lax.pbroadcast(x, name, source)
    return lax.psum(jnp.where(lax.axis_index(name) == source, x, 0.0), name)


def _all_to_all(lib, lax, x, split, concat):
    """fungrad's untiled all_to_all; for jax, the same through its tiled form (jax's
    transpose of the untiled one gets the shapes wrong when ``split != concat``)."""
    if lib is fnp:
        return lax.all_to_all(x, "i", split, concat)
    c = concat + (split < concat)
    y = lax.all_to_all(jnp.expand_dims(x, c), "i", split + (c <= split), c, tiled=True)
    return jnp.squeeze(y, split + (c <= split))


# Each: (make, per-member operand shape); the named axis has size N = 4.
CASES = {
    "ppermute_cycle": (lambda lib, api, lax: lambda x: lax.ppermute(
        x, "i", [(0, 1), (1, 2), (2, 3), (3, 0)]), (3,)),
    "ppermute_swap_pairs": (lambda lib, api, lax: lambda x: lax.ppermute(
        x, "i", [(0, 1), (1, 0), (2, 3), (3, 2)]), (2, 3)),
    "ppermute_identity_int": (lambda lib, api, lax: lambda x: lax.ppermute(
        (x * 4).astype(lib.int32), "i", [(k, k) for k in range(4)]), (3,)),
    "pshuffle": (lambda lib, api, lax: lambda x: lax.pshuffle(x, "i", [2, 0, 3, 1]), (3,)),
    "pswapaxes_0": (lambda lib, api, lax: lambda x: lax.pswapaxes(x, "i", 0), (4, 3)),
    "pswapaxes_1": (lambda lib, api, lax: lambda x: lax.pswapaxes(x, "i", 1), (2, 4)),
    "all_to_all_0_1": (lambda lib, api, lax: lambda x: _all_to_all(lib, lax, x, 0, 1), (4, 8, 4)),
    "all_to_all_2_0": (lambda lib, api, lax: lambda x: _all_to_all(lib, lax, x, 2, 0), (4, 8, 4)),
    "all_to_all_0_2": (lambda lib, api, lax: lambda x: _all_to_all(lib, lax, x, 0, 2), (4, 8, 4)),
    "all_to_all_tiled_1_0": (lambda lib, api, lax: lambda x: lax.all_to_all(
        x, "i", 1, 0, tiled=True), (4, 8, 4)),
    "all_to_all_tiled_1_1": (lambda lib, api, lax: lambda x: lax.all_to_all(
        x, "i", 1, 1, tiled=True), (4, 8, 4)),
    "all_to_all_tiled_0_2": (lambda lib, api, lax: lambda x: lax.all_to_all(
        x, "i", 0, 2, tiled=True), (4, 8, 4)),
    "psum_scatter_0": (lambda lib, api, lax: lambda x: lax.psum_scatter(x, "i"), (4, 3)),
    "psum_scatter_1": (lambda lib, api, lax: lambda x: lax.psum_scatter(
        x, "i", scatter_dimension=1), (3, 4)),
    "psum_scatter_tiled_1": (lambda lib, api, lax: lambda x: lax.psum_scatter(
        x, "i", scatter_dimension=1, tiled=True), (3, 8)),
    "psum_scatter_tiled_0": (lambda lib, api, lax: lambda x: lax.psum_scatter(
        x, "i", tiled=True), (4, 2)),
    "pbroadcast_0": (lambda lib, api, lax: lambda x: _pbroadcast(lib, lax, x, 0), (3,)),
    "pbroadcast_3": (lambda lib, api, lax: lambda x: _pbroadcast(lib, lax, x, 3), (2, 3)),
}
FLOAT_CASES = [k for k in CASES if "int" not in k]


@pytest.mark.parametrize("name", list(CASES))
def test_values(name):
    make, shape = CASES[name]
    x = r(N, *shape)
    check_vmap(make, x)
    check_vmap(make, np.moveaxis(x, 0, -1).copy(), in_axes=-1)


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_derivatives(name):
    """Per-member gradient, JVP and VJP inside the vmap (the collective's JVP and transpose
    rules), and a gradient through the whole vmap."""
    make, shape = CASES[name]
    x, t = r(N, *shape), r(N, *shape)

    def inside(lib, api, lax):
        f = make(lib, api, lax)

        def per_member(x, t):
            y, jv = api.jvp(f, (x,), (t,))
            _, pull = api.vjp(f, x)
            g = api.grad(lambda v: lib.sum(lib.sin(f(v * 1.5))))(x)
            return y, jv, pull(lib.cos(y) * 2.0), g
        return api.vmap(per_member, axis_name="i")
    f, jf = both(inside)
    assert_same(f(*to_fg((x, t))), jf(*to_jax((x, t))), GRAD_TOL, check_weak=False)

    def outside(lib, api, lax):
        f = make(lib, api, lax)
        return api.grad(lambda x: lib.sum(lib.sin(api.vmap(f, axis_name="i")(x * x))))
    f, jf = both(outside)
    assert_same(f(to_fg(x)), jf(to_jax(x)), GRAD_TOL, check_weak=False)
    assert_same(fungrad.jit(f)(to_fg(x)), jf(to_jax(x)), GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- partial permutations

def _completed(perm):
    """``perm`` extended to a full permutation (the unmatched sources to the free slots)."""
    srcs, dsts = {s for s, _ in perm}, {d for _, d in perm}
    free = zip(sorted(set(range(N)) - srcs), sorted(set(range(N)) - dsts))
    return list(perm) + list(free)


@pytest.mark.parametrize("perm", [[(0, 1), (1, 2)], [(3, 0)], [], [(2, 2), (0, 3), (1, 0)]])
def test_partial_permutation_fills_zeros(perm):
    """A member that is no pair's destination gets zeros (jax's documented semantics; its
    vmap rule accepts only full permutations, so the reference completes ``perm`` and
    masks the unmatched destinations)."""
    x = r(N, 3)
    dsts = np.array([k in {d for _, d in perm} for k in range(N)])

    def ref(v):
        y = jax.lax.ppermute(v, "i", _completed(perm))
        return jnp.where(jnp.asarray(dsts)[jax.lax.axis_index("i")], y, 0.0)
    compare(fungrad.vmap(lambda v: fungrad.lax.ppermute(v, "i", perm), axis_name="i"),
            jax.vmap(ref, axis_name="i"), x, check_weak=False)
    # the transpose is the inverse partial permutation: zeros for the unmatched sources
    f = fungrad.vmap(fungrad.grad(lambda v: fnp.sum(fungrad.lax.ppermute(v, "i", perm) * v)),
                     axis_name="i")
    jf = jax.vmap(jax.grad(lambda v: jnp.sum(ref(v) * v)), axis_name="i")
    assert_same(f(to_fg(x)), jf(to_jax(x)), GRAD_TOL)


def test_unbatched_operand():
    """A value every member shares (no batch dim) still goes through the collective."""
    def make(lib, api, lax):
        def f(x):
            c = lib.arange(8.0).reshape(4, 2)
            if lib is jnp:  # jax's rules mishandle unbatched operands: batch it
                c = c + 0.0 * x
            return (lax.ppermute(c, "i", [(0, 1), (1, 2), (2, 3), (3, 0)]) + x,
                    _all_to_all(lib, lax, c, 0, 1), lax.psum_scatter(c, "i"),
                    _pbroadcast(lib, lax, c, 1), lax.psum_scatter(c, "i", tiled=True))
        return f
    check_vmap(make, r(N, 4, 2))


# --------------------------------------------------------------------------- nested vmaps

NESTED = {  # f over the outer name "i" (size 4) and the inner name "j" (size 2)
    "ppermute": lambda lib, api, lax: lambda x: (
        lax.ppermute(x, "i", [(0, 3), (3, 0), (1, 2), (2, 1)]), lax.ppermute(x, "j", [(0, 1)
                                                                                  , (1, 0)])),
    "all_to_all": lambda lib, api, lax: lambda x: (
        lax.all_to_all(x, "i", 0, 1, tiled=True), lax.all_to_all(x, "j", 1, 0, tiled=True)),
    "all_to_all_tuple": lambda lib, api, lax: lambda x: (
        lax.all_to_all(x, ("i", "j"), 0, 1, tiled=True),
        lax.all_to_all(x, ("j", "i"), 1, 0, tiled=True),
        lax.all_to_all(x, ("i", "j"), 0, 0, tiled=True),
        lax.all_to_all(x, ("i", "j"), 1, 1, tiled=True)),
    "psum_scatter": lambda lib, api, lax: lambda x: (
        lax.psum_scatter(x, "i", tiled=True), lax.psum_scatter(x, "j", scatter_dimension=1,
                                                               tiled=True)),
    "pbroadcast": lambda lib, api, lax: lambda x: (_pbroadcast(lib, lax, x, 2, "i"),
                                                   _pbroadcast(lib, lax, x, 1, "j")),
}


@pytest.mark.parametrize("name", list(NESTED))
@pytest.mark.parametrize("inner_axis", [0, 1])
def test_nested_vmaps(name, inner_axis):
    x = r(N, 8, 8) if inner_axis else r(N, 2, 8, 8)
    x = np.stack([x] * 2, axis=1 + inner_axis) if inner_axis else x

    def make(lib, api, lax):
        f = NESTED[name](lib, api, lax)
        return api.vmap(api.vmap(f, in_axes=inner_axis, axis_name="j"), axis_name="i")
    f, jf = both(make)
    assert_same(f(to_fg(x)), jf(to_jax(x)), check_weak=False)
    g = fungrad.jit(fungrad.grad(lambda v: sum(fnp.sum(fnp.sin(o)) for o in f(v))))
    jg = jax.grad(lambda v: sum(jnp.sum(jnp.sin(o)) for o in jf(v)))
    assert_same(g(to_fg(x)), jg(to_jax(x)), GRAD_TOL)


@pytest.mark.parametrize("tiled", [False, True])
def test_psum_scatter_tuple_and_batch_dim_after_scatter_dim(tiled):
    """Scatter over ``('i', 'j')`` (the combined axis, ``i`` major) and over the outer name
    with the inner batch dim after the scatter dimension: jax's vmap rejects the first and
    miscomputes the second's shape, so the reference is psum followed by each member's
    row (block)."""
    x = r(N, 2, 8 * (1 + tiled), 3)

    def scatter(lax, v, axes, size):
        return lax.psum_scatter(v, axes, tiled=tiled) if tiled or size == 8 else \
            lax.psum_scatter(v[:size], axes)

    def ref(v, axes, size):
        total = jax.lax.psum(v if tiled or size == 8 else v[:size], axes)
        me = jax.lax.axis_index("i") * (2 if size == 8 else 1) + (
            jax.lax.axis_index("j") if size == 8 else 0)
        if tiled:
            return jax.lax.dynamic_slice_in_dim(total, me * (16 // size), 16 // size)
        return total[me]

    for axes, size in [(("i", "j"), 8), ("i", 4)]:
        f = fungrad.vmap(fungrad.vmap(lambda v: scatter(fungrad.lax, v, axes, size), in_axes=2,
                                      axis_name="j"), axis_name="i")
        jf = jax.vmap(jax.vmap(lambda v: ref(v, axes, size), in_axes=2, axis_name="j"),
                      axis_name="i")
        xs = np.moveaxis(x, 1, 3).copy()
        assert_same(f(to_fg(xs)), jf(to_jax(xs)), check_weak=False)


# --------------------------------------------------------------------------- errors

def _raises(fg_call, jax_call, fg_exc, match, jax_exc=Exception):
    with pytest.raises(fg_exc, match=match):
        fg_call()
    if jax_call is not None:
        with pytest.raises(jax_exc):
            jax_call()


ERRORS = {  # name: (fungrad lax -> f, jax lax -> f or None, exception, message)
    "ppermute_dup_dst": (lambda lax: lambda x: lax.ppermute(x, "i", [(0, 1), (2, 1)]), None,
                         ValueError, "ppermute: perm sources and destinations must be unique"),
    "ppermute_dup_src": (lambda lax: lambda x: lax.ppermute(x, "i", [(0, 1), (0, 2)]), None,
                         ValueError, "ppermute: perm sources and destinations must be unique"),
    "ppermute_range": (lambda lax: lambda x: lax.ppermute(x, "i", [(0, 1), (1, 4)]), True,
                       ValueError, r"ppermute: perm pair \(1, 4\) is out of range"),
    "ppermute_pairs": (lambda lax: lambda x: lax.ppermute(x, "i", [(0, 1.5)]), None,
                       ValueError, "ppermute: perm must be a sequence of"),
    "pshuffle_not_perm": (lambda lax: lambda x: lax.pshuffle(x, "i", [3, 0, 1, 1]), True,
                          ValueError, "pshuffle: `perm` does not represent a permutation"),
    "pshuffle_short": (lambda lax: lambda x: lax.pshuffle(x, "i", [1, 0]), True,
                       ValueError, "pshuffle: `perm` has 2 entries but the axis i has size 4"),
    "all_to_all_size": (lambda lax: lambda x: lax.all_to_all(x, "i", 1, 0), True, ValueError,
                        r"all_to_all requires the size of the mapped axis i \(4\) to equal"),
    "all_to_all_tiled": (lambda lax: lambda x: lax.all_to_all(x, "i", 2, 0, tiled=True), True,
                         ValueError, r"all_to_all: the size of split_axis 2 \(3\) has to be "
                                     r"divisible by the size of the named axis i \(4\)"),
    "all_to_all_groups": (lambda lax: lambda x: lax.all_to_all(
        x, "i", 0, 0, axis_index_groups=[[0, 1], [2, 3]]), True, NotImplementedError,
        "all_to_all: axis_index_groups is not supported under vmap"),
    "pswapaxes_size": (lambda lax: lambda x: lax.pswapaxes(x, "i", 1), True, ValueError,
                       r"all_to_all requires .* \(4\) to equal the size of split_axis 1 \(2\)"),
    "psum_scatter_size": (lambda lax: lambda x: lax.psum_scatter(x, "i", scatter_dimension=1),
                          None, ValueError, r"psum_scatter requires the size of the mapped "
                                            r"axis i \(4\) to equal .* scatter_dimension 1"),
    "psum_scatter_tiled": (lambda lax: lambda x: lax.psum_scatter(
        x, "i", scatter_dimension=2, tiled=True), True, ValueError,
        r"psum_scatter: the size of scatter_dimension 2 \(3\) has to be divisible"),
    "psum_scatter_groups": (lambda lax: lambda x: lax.psum_scatter(
        x, "i", axis_index_groups=[[0, 1], [2, 3]]), True, NotImplementedError,
        "psum_scatter: axis_index_groups is not supported under vmap"),
    "pbroadcast_source": (lambda lax: lambda x: lax.pbroadcast(x, "i", 4), True, ValueError,
                          r"pbroadcast: source must be a member index in \[0, 4\)"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    """fungrad raises naming the function and the argument; ``True`` in the table: jax
    raises too (its messages differ; a ``None``: jax's vmap rule does not check)."""
    make, jax_raises, exc, match = ERRORS[name]
    x = r(N, 4, 2, 3)
    jax_call = (lambda: jax.vmap(make(jax.lax), axis_name="i")(to_jax(x))) if jax_raises \
        else None
    _raises(lambda: fungrad.vmap(make(fungrad.lax), axis_name="i")(to_fg(x)), jax_call,
            exc, match)


@pytest.mark.parametrize("fn,call", [
    ("ppermute", lambda lax, x, n: lax.ppermute(x, n, [(0, 1)])),
    ("pshuffle", lambda lax, x, n: lax.pshuffle(x, n, [0, 1])),
    ("pswapaxes", lambda lax, x, n: lax.pswapaxes(x, n, 0)),
    ("all_to_all", lambda lax, x, n: lax.all_to_all(x, n, 0, 0)),
    ("psum_scatter", lambda lax, x, n: lax.psum_scatter(x, n)),
    ("pbroadcast", lambda lax, x, n: lax.pbroadcast(x, n, 0)),
])
def test_unbound_axis_name(fn, call):
    """Outside a vmap binding the name: a NameError naming the function (jax raises too)."""
    want = "all_to_all" if fn == "pswapaxes" else fn
    x = r(2, 2)
    _raises(lambda: call(fungrad.lax, to_fg(x), "i"), lambda: call(jax.lax, to_jax(x), "i"),
            NameError, f"{want}: unbound axis name: i")
    _raises(lambda: fungrad.vmap(lambda v: call(fungrad.lax, v, "i"), axis_name="j")(to_fg(x)),
            lambda: jax.vmap(lambda v: call(jax.lax, v, "i"), axis_name="j")(to_jax(x)),
            NameError, f"{want}: unbound axis name: i")


@pytest.mark.parametrize("call", [lambda lax, x: lax.ppermute(x, ("i", "j"), [(0, 1)]),
                                  lambda lax, x: lax.pbroadcast(x, ("i", "j"), 0)])
def test_tuple_names_unsupported(call):
    """jax's vmap rules for ppermute and pbroadcast take one name only; so do fungrad's."""
    x = r(2, 2, 3)
    _raises(lambda: fungrad.vmap(fungrad.vmap(lambda v: call(fungrad.lax, v), axis_name="j"),
                                 axis_name="i")(to_fg(x)),
            lambda: jax.vmap(jax.vmap(lambda v: call(jax.lax, v), axis_name="j"),
                             axis_name="i")(to_jax(x)),
            NotImplementedError, r"over a tuple of axis names \('i', 'j'\)")

