"""Mutable array references (``fungrad.ref``) against ``jax.ref`` on the same programs:
eager reads and writes, ``jit`` with Ref arguments, refs closed over by ``jit`` and by
``scan``/``while_loop``/``cond`` bodies, refs created inside under ``grad``/``vmap``/``jit``,
and the errors (wrong shape or dtype, a freed ref, escaping values, aliasing)."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import errors, lax
from fungrad import ref as fref
from tests.harness import assert_same


def both(program):
    """Run ``program(api, np_module, ref_module)`` with fungrad and with jax; compare."""
    out = program(fungrad, jnp, fref)
    ref = program(jax, jjnp, jax.ref)
    assert_same(out, ref, check_weak=False)
    return out


# --------------------------------------------------------------------------- eager

def test_eager_reads_and_writes():
    def program(api, np_, R):
        r = R.new_ref(np_.zeros(3))
        r[...] += 1.0
        r[0] = 5.0
        r[1:] = r[1:] * 2.0
        m = R.new_ref(np_.arange(6.0).reshape(2, 3))
        m[np_.array([1, 0]), 0] = np_.array([7.0, 8.0])
        return r[...], r[0], m[...], m[:, 1], R.freeze(m)
    both(program)


def test_ref_module_functions():
    def program(api, np_, R):
        r = R.new_ref(np_.arange(3.0))
        old = R.swap(r, 1, 9.0)
        R.set(r, 0, np_.float32(3.0))
        R.addupdate(r, ..., np_.ones(3))
        R.addupdate(r, 2, 10.0)
        return old, R.get(r, 0), R.get(r, None), r[...]
    both(program)


def test_ref_type_and_repr():
    r = fref.new_ref(jnp.zeros((2, 3)))
    jr = jax.ref.new_ref(jjnp.zeros((2, 3)))
    assert (r.shape, r.dtype, r.ndim, r.size, len(r)) == (jr.shape, jr.dtype, jr.ndim, jr.size,
                                                          len(jr))
    assert repr(r) == repr(jr) and str(r.aval) == str(jax.typeof(jr))
    assert isinstance(r.aval, fref.AbstractRef) and r.aval.inner_aval.shape == (2, 3)
    assert repr(fref.new_ref(1.0)) == repr(jax.new_ref(1.0))
    assert fungrad.tree.leaves({"a": r}) == [r]


def test_empty_and_free_ref():
    def fill():
        e = fref.empty_ref(fungrad.ShapeDtypeStruct((2,), jnp.float32))
        e[...] = jnp.ones(2)
        return fref.freeze(e)
    np.testing.assert_array_equal(fungrad.jit(fill)(), np.ones(2, np.float32))
    np.testing.assert_array_equal(fill(), np.ones(2, np.float32))  # (jax: jit only)
    r = fref.new_ref(jnp.ones(2))
    fref.free_ref(r)
    with pytest.raises(ValueError, match="`get`: .*freed with free_ref"):
        r[...]
    with pytest.raises(ValueError, match="`set`: .*freed"):
        r[...] = jnp.ones(2)


# --------------------------------------------------------------------------- errors of writes

@pytest.mark.parametrize("idx, value, what", [
    (..., np.zeros(2, np.float32), "shape"),        # no broadcasting...
    (..., 7.0, "shape"),
    (slice(0, 2), np.ones(3, np.float32), "shape"),
    (..., np.zeros(3, np.int32), "dtype"),          # ...and no promotion
    (0, 1, "dtype"),
])
def test_write_errors_name_the_operation(idx, value, what):
    r, jr = fref.new_ref(jnp.zeros(3)), jax.new_ref(jjnp.zeros(3))
    with pytest.raises(ValueError, match=f"Invalid {what} for `swap`") as jerr:
        jr[idx] = value
    with pytest.raises(ValueError, match=f"Invalid {what} for `set`") as err:
        r[idx] = value
    assert str(err.value).split(".")[1] == str(jerr.value).split(".")[1]  # "Ref shape/dtype: ..."
    with pytest.raises(ValueError, match=f"Invalid {what} for `addupdate`"):
        fref.addupdate(r, idx, value)
    np.testing.assert_array_equal(r[...], np.zeros(3, np.float32))  # nothing written


def test_int_ref_refuses_floats():
    r, jr = fref.new_ref(jnp.zeros(3, jnp.int32)), jax.new_ref(jjnp.zeros(3, jjnp.int32))
    with pytest.raises(ValueError, match="Invalid dtype"):
        jr[0] = 1.5
    with pytest.raises(ValueError, match="Invalid dtype for `set`. Ref dtype: int32"):
        r[0] = 1.5


# --------------------------------------------------------------------------- jit: Ref arguments

def test_jit_ref_argument_writes_are_visible():
    def program(api, np_, R):
        r = R.new_ref(np_.zeros(3))

        @api.jit
        def f(r, x):
            r[...] += x
            return r[1]
        a = f(r, 2.0)
        b = f(r, np_.float32(1.0))
        return a, b, r[...]
    both(program)


def test_jit_ref_argument_cache():
    f = fungrad.jit(lambda r, x: r.__setitem__(0, x))
    r1, r2 = fref.new_ref(jnp.zeros(2)), fref.new_ref(jnp.ones(2))
    f(r1, 3.0)
    f(r2, 4.0)  # same signature: a cache hit, writing into the other ref
    assert f._cache_size() == 1
    np.testing.assert_array_equal(r1[...], [3.0, 0.0])
    np.testing.assert_array_equal(r2[...], [4.0, 1.0])
    f(fref.new_ref(jnp.zeros(3)), 1.0)  # another ref type: another entry
    g = fungrad.jit(lambda x: x[0])
    g(jnp.zeros(2))
    g(fref.new_ref(jnp.zeros(2)))  # an array and a ref of one type are distinct signatures
    assert f._cache_size() == 2 and g._cache_size() == 2


def test_jit_ref_argument_read_only_and_nested():
    r = fref.new_ref(jnp.arange(3.0))
    inner = fungrad.jit(lambda r, x: fref.addupdate(r, ..., x))
    outer = fungrad.jit(lambda r, x: (inner(r, x), inner(r, x), r[...] * 2)[2])
    np.testing.assert_array_equal(outer(r, jnp.ones(3)), [4.0, 6.0, 8.0])
    np.testing.assert_array_equal(r[...], [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(fungrad.jit(lambda r: r[...].sum())(r), 9.0)


def test_jit_ref_argument_errors():
    r = fref.new_ref(jnp.zeros(3))
    with pytest.raises(ValueError, match="only one reference to a mutable array"):
        fungrad.jit(lambda a, b: a[...])(r, r)
    with pytest.raises(ValueError, match="mutable array references cannot be returned"):
        fungrad.jit(lambda a: a)(r)
    with pytest.raises(ValueError, match="both closed over and passed"):
        fungrad.jit(lambda a: a[...] + r[...])(r)
    for f in (jax.jit(lambda a, b: a[...]), ):  # jax refuses the same
        with pytest.raises(ValueError, match="only one reference"):
            jr = jax.new_ref(jjnp.zeros(3))
            f(jr, jr)


# --------------------------------------------------------------------------- closed-over refs

def test_jit_closed_over_ref():
    def program(api, np_, R):
        cr = R.new_ref(np_.zeros(2))
        h = api.jit(lambda x: cr.__setitem__(..., cr[...] + x))
        h(1.0)
        h(1.0)  # a cache hit reads the ref's current value, never a baked-in one
        k = api.jit(lambda x: cr[...] * x)
        first = k(2.0)
        cr[...] = np_.ones(2) * 5
        return first, k(2.0), cr[...]
    both(program)


def test_scan_while_cond_closed_over_refs():
    def program(api, np_, R):
        c = R.new_ref(0.0)
        rr = R.new_ref(np_.zeros(3))

        def loop():
            return api.lax.while_loop(lambda i: i < 3,
                                      lambda i: (c.__setitem__(..., c[...] + i), i + 1)[1], 0)

        def branch(p):
            return api.lax.cond(p, lambda: c.__setitem__(..., c[...] + 10.0), lambda: None)

        def sc(xs):
            def body(carry, x):
                rr[...] += x
                return carry + 1.0, rr[0]
            return api.lax.scan(body, 0.0, xs)
        outs = [loop(), c[...], api.jit(loop)(), c[...]]
        branch(True)
        branch(False)
        api.jit(branch)(True)
        outs += [c[...], sc(np_.ones((2, 3))), rr[...], api.jit(sc)(np_.ones((2, 3))), rr[...]]
        api.lax.fori_loop(0, 3, lambda i, v: (c.__setitem__(..., c[...] + 1.0), v)[1], 0.0)
        return outs + [c[...]]
    both(program)


def test_nested_scans_close_over_one_ref():
    def program(api, np_, R):
        r = R.new_ref(np_.zeros(()))

        def inner(c, x):
            r[...] += x
            return c, None

        def outer(c, xs):
            api.lax.scan(inner, 0.0, xs)
            return c + r[...], None
        out = api.jit(lambda xs: api.lax.scan(outer, 0.0, xs)[0])(np_.ones((2, 3)))
        return out, r[...]
    both(program)


def test_while_cond_fun_may_not_write():
    cnt = fref.new_ref(0)
    with pytest.raises(ValueError, match="cond_fun wrote to a Ref"):
        lax.while_loop(lambda i: (cnt.__setitem__(..., cnt[...] + 1), i < 3)[1],
                       lambda i: i + 1, 0)
    assert int(cnt[...]) == 0


# --------------------------------------------------------------------------- created inside

def _accumulate(api, np_, R):
    def g(x):
        acc = R.new_ref(np_.zeros(()))

        def body(c, xi):
            acc[...] += xi * c
            return c + 1.0, None
        api.lax.scan(body, 1.0, x)
        return R.freeze(acc)
    return g


def test_created_inside_under_transformations():
    def program(api, np_, R):
        g = _accumulate(api, np_, R)
        x = np_.arange(1.0, 4.0)
        return g(x), api.grad(g)(x), api.jit(g)(x), api.vmap(g)(np_.stack([x, x * 2])), \
            api.jit(api.grad(g))(x)
    both(program)


def test_created_inside_grad_of_write():
    def program(api, np_, R):
        def f(x):
            q = R.new_ref(x)
            q[...] = q[...] * x
            R.addupdate(q, ..., np_.sin(x))
            return R.freeze(q)
        return api.grad(f)(3.0), api.vmap(api.grad(f))(np_.arange(3.0))
    both(program)


# --------------------------------------------------------------------------- escaping values

def test_grad_and_vmap_refuse_writes_into_outer_refs():
    r, jr = fref.new_ref(jnp.ones(2)), jax.new_ref(jjnp.ones(2))
    for api, np_, ref in ((jax, jjnp, jr), (fungrad, jnp, r)):
        def write(x):
            ref[...] += x
            return (x * 2).sum()

        def write_const(x):
            ref[...] += 1.0
            return (x * 2).sum()
        with pytest.raises(Exception, match="differentiated value on a non-differentiated"):
            api.grad(write)(np_.ones(2))
        with pytest.raises(Exception, match="vmapped value on an unbatched"):
            api.vmap(write)(np_.ones((3, 2)))
        with pytest.raises(Exception, match="differentiated value"):
            api.grad(lambda xs: api.lax.scan(lambda c, x: (write(x), 0.0), 0.0, xs)[0])(
                np_.ones((2, 2)))
        # (jax has already written the refused values above; fungrad leaves the ref as it was)
        before = np.asarray(ref[...])
        np.testing.assert_array_equal(api.grad(write_const)(np_.ones(2)), [2.0, 2.0])
        np.testing.assert_array_equal(ref[...], before + 1)  # a constant write is fine
        np.testing.assert_array_equal(api.grad(lambda x: (x * ref[...]).sum())(np_.ones(2)),
                                      before + 1)
    np.testing.assert_array_equal(r[...], [2.0, 2.0])


def test_lax_map_and_staged_bodies():
    def program(api, np_, R):
        r = R.new_ref(np_.zeros(2))
        api.lax.map(lambda x: r.__setitem__(..., r[...] + x), np_.ones((3, 2)))
        return r[...], api.lax.map(lambda x: x + r[...], np_.ones((2, 2)))
    both(program)
    # a staging trace that threads no refs refuses a write that would escape into one
    r = fref.new_ref(jnp.zeros(2))
    with pytest.raises(ValueError, match="`set`: a value traced by .* cannot be written"):
        fungrad.make_jaxpr(lambda x: r.__setitem__(..., x))(jnp.ones(2))
    np.testing.assert_array_equal(r[...], [0.0, 0.0])


def test_ref_created_inside_jit_cannot_escape():
    leak = []

    @fungrad.jit
    def f(x):
        leak.append(fref.new_ref(x))
        return x
    f(1.0)
    with pytest.raises(errors.UnexpectedTracerError, match="`get` on a Ref"):
        leak[0][...]


def test_disable_jit_runs_refs_as_python():
    c = fref.new_ref(0.0)
    with fungrad.disable_jit():
        lax.scan(lambda s, x: (c.__setitem__(..., c[...] + x), s)[1:] + (None,), 0.0,
                 jnp.ones(3))
        fungrad.jit(lambda: c.__setitem__(..., c[...] * 2))()
    assert float(c[...]) == 6.0
