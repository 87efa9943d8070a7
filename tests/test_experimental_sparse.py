"""fungrad.experimental.sparse against jax.experimental.sparse on the same inputs: layouts
(data, indices, nse, ordering), products, reductions, derivatives, jit, vmap, sparsify."""
from __future__ import annotations

import jax
import jax.experimental.sparse as jsparse
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.experimental import sparse
from harness import GRAD_TOL, assert_same, quick_jit

RNG = np.random.default_rng(0)


def sparse_array(shape, density=0.4, dtype=np.float32):
    x = RNG.standard_normal(shape).astype(dtype)
    return np.where(RNG.random(shape) < density, x, 0).astype(dtype)


def same_bcoo(fg, jx):
    assert isinstance(fg, sparse.BCOO) and isinstance(jx, jsparse.BCOO)
    assert fg.shape == jx.shape and (fg.n_batch, fg.n_dense) == (jx.n_batch, jx.n_dense)
    assert_same(fg.data, jx.data, check_weak=False)
    assert_same(fg.indices, jx.indices, check_weak=False)


LAYOUTS = [((4, 5), 0, 0, None), ((4, 5), 0, 0, 12), ((3, 4, 5), 1, 0, None),
           ((3, 4, 2), 0, 1, None), ((2, 3, 4, 2), 1, 1, 12), ((3, 4), 2, 0, None),
           ((3, 4), 0, 2, None)]


@pytest.mark.parametrize("shape,n_batch,n_dense,nse", LAYOUTS)
def test_fromdense_todense_match_jax(shape, n_batch, n_dense, nse):
    x = sparse_array(shape)
    fg = sparse.BCOO.fromdense(x, n_batch=n_batch, n_dense=n_dense, nse=nse)
    jx = jsparse.BCOO.fromdense(x, n_batch=n_batch, n_dense=n_dense, nse=nse)
    same_bcoo(fg, jx)
    assert fg.nse == jx.nse and fg.indices_sorted and fg.unique_indices
    np.testing.assert_array_equal(fg.todense(), x)
    np.testing.assert_array_equal(sparse.todense(fg), x)
    jitted = fungrad.jit(lambda m: sparse.bcoo_fromdense(
        m, nse=fg.nse, n_batch=n_batch, n_dense=n_dense).todense())(x)
    np.testing.assert_array_equal(jitted, x)


def test_layout_properties_and_repr():
    x = sparse_array((3, 4, 5))
    fg = sparse.BCOO.fromdense(x, n_batch=1, index_dtype=np.int16)
    jx = jsparse.BCOO.fromdense(x, n_batch=1, index_dtype=np.int16)
    assert repr(fg) == repr(jx)
    assert (fg.dtype, fg.ndim, fg.size, fg.nse, fg.n_sparse) == (jx.dtype, jx.ndim, jx.size,
                                                                 jx.nse, jx.n_sparse)
    assert fg.indices.dtype == np.int16
    assert fg.astype(np.int32).dtype == np.int32
    leaves, treedef = fungrad.tree.flatten(fg)
    assert len(leaves) == 2 and fungrad.tree.unflatten(treedef, leaves).shape == fg.shape


DOTS = [  # (lhs shape, n_batch, rhs shape, dimension numbers)
    ((4, 5), 0, (5, 3), (((1,), (0,)), ((), ()))),
    ((4, 5), 0, (5,), (((1,), (0,)), ((), ()))),
    ((4, 5), 0, (4, 2), (((0,), (0,)), ((), ()))),
    ((3, 4, 5), 1, (3, 5, 2), (((2,), (1,)), ((0,), (0,)))),
    ((3, 4, 5), 1, (5, 2), (((2,), (0,)), ((), ()))),
    ((3, 4, 5), 1, (3, 2), (((0,), (0,)), ((), ()))),
    ((3, 4, 5), 2, (3, 4, 5), (((1, 2), (1, 2)), ((0,), (0,)))),
]


@pytest.mark.parametrize("lshape,n_batch,rshape,dn", DOTS)
def test_dot_general_both_sides(lshape, n_batch, rshape, dn):
    x, y = sparse_array(lshape), RNG.standard_normal(rshape).astype(np.float32)
    fg = sparse.BCOO.fromdense(x, n_batch=n_batch)
    jx = jsparse.BCOO.fromdense(x, n_batch=n_batch)
    ref = jsparse.bcoo_dot_general(jx, y, dimension_numbers=dn)
    assert_same(sparse.bcoo_dot_general(fg, jnp.asarray(y), dimension_numbers=dn), ref,
                check_weak=False)
    rdn = tuple(d[::-1] for d in dn)   # dense on the left
    ref = jsparse.bcoo_dot_general(y, jx, dimension_numbers=rdn)
    assert_same(sparse.bcoo_dot_general(jnp.asarray(y), fg, dimension_numbers=rdn), ref,
                check_weak=False)
    jitted = fungrad.jit(lambda m, v: sparse.bcoo_dot_general(m, v, dimension_numbers=dn))
    assert_same(jitted(fg, jnp.asarray(y)), np.asarray(jax.lax.dot_general(x, y, dn)))


def test_matmul_operators_and_dtypes():
    x = sparse_array((4, 5))
    fg, jx = sparse.BCOO.fromdense(x), jsparse.BCOO.fromdense(x)
    v, m = np.arange(5, dtype=np.int32), RNG.standard_normal((3, 4)).astype(np.float32)
    assert_same(fg @ jnp.asarray(v), jx @ v, check_weak=False)
    assert_same(m @ fg, jax.numpy.asarray(m) @ jx, check_weak=False)   # NumPy defers to BCOO
    # and so do fungrad's arrays and tracers, as jax's
    assert_same(jnp.asarray(m) @ fg, jax.numpy.asarray(m) @ jx, check_weak=False)
    assert_same(fungrad.jit(lambda d, s: d @ s)(jnp.asarray(m), fg), jax.numpy.asarray(m) @ jx,
                check_weak=False)
    same_bcoo(jnp.asarray(x) * fg, jax.numpy.asarray(x) * jx)
    assert_same(fg @ np.ones(5, np.float32), jx @ np.ones(5, np.float32), check_weak=False)
    b = sparse_array((2, 4, 5))
    fb, jb = sparse.BCOO.fromdense(b, n_batch=1), jsparse.BCOO.fromdense(b, n_batch=1)
    w = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    assert_same(fb @ jnp.asarray(w), jb @ w, check_weak=False)


def test_elementwise_and_reductions():
    x = sparse_array((3, 4, 2))
    for n_batch, n_dense in [(0, 0), (1, 1)]:
        fg = sparse.BCOO.fromdense(x, n_batch=n_batch, n_dense=n_dense)
        jx = jsparse.BCOO.fromdense(x, n_batch=n_batch, n_dense=n_dense)
        same_bcoo(fg * 2.0, jx * 2.0)
        same_bcoo(-fg, -jx)
        same_bcoo(fg / 2.0, jx / 2.0)
        same_bcoo(fg * jnp.asarray(x), jx * x)
        same_bcoo(fg * jnp.ones((4, 1), np.float32), jx * np.ones((4, 1), np.float32))
        if n_batch == n_dense == 0:
            same_bcoo(fg.T, jx.T)
        for axes in [(0,), (1,), (2,), (0, 2), (1, 2)]:
            same_bcoo(sparse.bcoo_reduce_sum(fg, axes=axes), jsparse.bcoo_reduce_sum(jx, axes=axes))
        assert_same(fg.sum(), jx.sum(), check_weak=False)
        same_bcoo(fg + fg, jx + jx)
        assert_same(fg + jnp.asarray(x), jx + x, check_weak=False)
        assert_same(sparse.bcoo_multiply_dense(fg, jnp.asarray(x)),
                    jsparse.bcoo_multiply_dense(jx, x))


def test_transpose_extract_broadcast():
    x = sparse_array((2, 3, 4))
    fg, jx = sparse.BCOO.fromdense(x, n_batch=1), jsparse.BCOO.fromdense(x, n_batch=1)
    same_bcoo(sparse.bcoo_transpose(fg, permutation=(0, 2, 1)),
              jsparse.bcoo_transpose(jx, permutation=(0, 2, 1)))
    y = RNG.standard_normal(x.shape).astype(np.float32)
    same_bcoo(sparse.bcoo_extract(fg, jnp.asarray(y)), jsparse.bcoo_extract(jx, y))
    m = sparse.BCOO.fromdense(x[0])
    jm = jsparse.BCOO.fromdense(x[0])
    for shape, dims in [((5, 3, 4), (1, 2)), ((3, 1, 4), (0, 2))]:
        same_bcoo(sparse.bcoo_broadcast_in_dim(m, shape=shape, broadcast_dimensions=dims),
                  jsparse.bcoo_broadcast_in_dim(jm, shape=shape, broadcast_dimensions=dims))


def test_duplicates_sorting_and_constructors():
    data = np.array([1., 2., 3., 4., 0.], np.float32)
    indices = np.array([[2, 1], [0, 3], [2, 1], [1, 0], [3, 4]], np.int32)   # last: padding
    fg = sparse.BCOO((data, indices), shape=(3, 4))
    jx = jsparse.BCOO((data, indices), shape=(3, 4))
    same_bcoo(sparse.bcoo_sum_duplicates(fg), jsparse.bcoo_sum_duplicates(jx))
    same_bcoo(sparse.bcoo_sum_duplicates(fg, nse=5), jsparse.bcoo_sum_duplicates(jx, nse=5))
    same_bcoo(fg.sum_duplicates(), jx.sum_duplicates())
    same_bcoo(sparse.bcoo_sort_indices(fg), jsparse.bcoo_sort_indices(jx))
    y = RNG.standard_normal((3, 4)).astype(np.float32)
    same_bcoo(sparse.bcoo_extract(fg, jnp.asarray(y)), jsparse.bcoo_extract(jx, y))
    np.testing.assert_array_equal(fg.todense(), jx.todense())
    same_bcoo(sparse.eye(4, 5, k=1), jsparse.eye(4, 5, k=1))
    same_bcoo(sparse.eye(4, k=-2), jsparse.eye(4, k=-2))
    same_bcoo(sparse.empty((3, 4), nse=2), jsparse.empty((3, 4), nse=2))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    s = scipy_sparse.random(4, 5, density=0.4, format="csr", random_state=0, dtype=np.float32)
    same_bcoo(sparse.BCOO.from_scipy_sparse(s), jsparse.BCOO.from_scipy_sparse(s))


def test_grads_match_jax_and_finite_differences():
    x = sparse_array((4, 5))
    idx = jsparse.BCOO.fromdense(x).indices
    d = jsparse.BCOO.fromdense(x).data
    y = RNG.standard_normal((5, 3)).astype(np.float32)

    def loss(mod, spmod):
        def f(data, dense):
            m = spmod.BCOO((data, idx if mod is jax.numpy else jnp.asarray(idx)), shape=x.shape)
            rdot = spmod.bcoo_dot_general(dense.T, m.T, dimension_numbers=(((1,), (0,)), ((), ())))
            return mod.sum(mod.tanh(m @ dense) + mod.tanh(rdot).T)
        return f
    ref = quick_jit(jax.grad(loss(jax.numpy, jsparse), argnums=(0, 1)))(d, y)
    fg_loss = loss(jnp, sparse)
    got = fungrad.grad(fg_loss, argnums=(0, 1))(jnp.asarray(d), jnp.asarray(y))
    assert_same(got, ref, GRAD_TOL, check_weak=False)
    assert_same(fungrad.jit(fungrad.grad(fg_loss, argnums=(0, 1)))(jnp.asarray(d),
                                                                    jnp.asarray(y)),
                ref, GRAD_TOL, check_weak=False)
    fungrad.test_util.check_grads(fg_loss, (jnp.asarray(d), jnp.asarray(y)), order=1,
                                  modes=("rev",), atol=5e-2, rtol=5e-2)


def test_fromdense_todense_derivatives():
    x = sparse_array((3, 4, 2))

    def f(mod, spmod):
        return lambda m: mod.sum(spmod.BCOO.fromdense(m, nse=6, n_batch=1).data ** 2) + \
            mod.sum(mod.sin(spmod.BCOO.fromdense(m, nse=20).todense()))
    ref = quick_jit(jax.grad(f(jax.numpy, jsparse)))(x)
    assert_same(fungrad.grad(f(jnp, sparse))(jnp.asarray(x)), ref, GRAD_TOL, check_weak=False)
    t = RNG.standard_normal(x.shape).astype(np.float32)
    ref_t = jax.jvp(lambda m: jsparse.BCOO.fromdense(m, nse=20).todense(), (x,), (t,))[1]
    got_t = fungrad.jvp(lambda m: sparse.BCOO.fromdense(m, nse=20).todense(),
                        (jnp.asarray(x),), (jnp.asarray(t),))[1]
    assert_same(got_t, ref_t, check_weak=False)


def test_vmap_over_bcoo_and_fromdense():
    x = sparse_array((3, 4, 5))
    fg, jx = sparse.BCOO.fromdense(x, n_batch=1), jsparse.BCOO.fromdense(x, n_batch=1)
    v = RNG.standard_normal(5).astype(np.float32)
    ref = jax.vmap(lambda m: m @ v)(jx)
    assert_same(fungrad.vmap(lambda m: m @ jnp.asarray(v))(fg), ref, check_weak=False)
    out = fungrad.vmap(lambda m: sparse.bcoo_fromdense(m, nse=8))(jnp.asarray(x))
    same_bcoo(out, jax.vmap(lambda m: jsparse.bcoo_fromdense(m, nse=8))(x))
    same_bcoo(fungrad.vmap(lambda m: m * 2.0)(fg), jax.vmap(lambda m: m * 2.0)(jx))
    np.testing.assert_array_equal(fungrad.vmap(sparse.todense)(fg), x)
    ws = RNG.standard_normal((3, 5, 2)).astype(np.float32)
    ref = jax.vmap(lambda w: jsparse.bcoo_dot_general(
        jx, w, dimension_numbers=(((2,), (0,)), ((), ()))))(ws)
    got = fungrad.vmap(lambda w: sparse.bcoo_dot_general(
        fg, w, dimension_numbers=(((2,), (0,)), ((), ()))))(jnp.asarray(ws))
    assert_same(got, ref, check_weak=False)


def test_vmap_refuses_a_bcoo_mapped_off_its_leading_batch_axis():
    x = sparse_array((3, 4, 5))
    for lib, mod in ((fungrad, sparse), (jax, jsparse)):  # jax refuses both as well
        args = ((mod.BCOO.fromdense(x, n_batch=1), 1), (mod.BCOO.fromdense(x[0]), 0))
        for mat, axis in args:
            with pytest.raises(ValueError, match="BCOO"):
                lib.vmap(lambda m: m.todense().sum(), in_axes=axis)(mat)


def test_sparsify_matches_jax():
    x = sparse_array((4, 5))
    fg, jx = sparse.BCOO.fromdense(x), jsparse.BCOO.fromdense(x)
    y = RNG.standard_normal((5, 3)).astype(np.float32)

    def f(mod):
        return lambda m, w: (mod.sum(mod.sin(2.0 * m), 0), -(m * 3.0).T, m @ w,
                             (m + m).sum(1), mod.sum(m), m * m, (m / 2.0) ** 2)
    ref = jsparse.sparsify(f(jax.numpy))(jx, y)
    got = sparse.sparsify(f(jnp))(fg, jnp.asarray(y))
    for a, b in zip(got, ref):
        if isinstance(b, jsparse.BCOO):
            same_bcoo(a, b)
        else:
            assert_same(a, b, check_weak=False)
    jitted = fungrad.jit(lambda m: sparse.sparsify(lambda a: a.sum(0))(m).todense())
    np.testing.assert_allclose(jitted(fg), x.sum(0), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="'exp'"):
        sparse.sparsify(jnp.exp)(fg)


def test_bad_inputs_raise_clear_errors():
    x = sparse_array((4, 5))
    fg = sparse.BCOO.fromdense(x)
    with pytest.raises(ValueError, match="bcoo_fromdense.*n_batch"):
        sparse.bcoo_fromdense(x, n_batch=2, n_dense=1)
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="nse"):
        fungrad.jit(lambda m: sparse.bcoo_fromdense(m).data)(x)
    with pytest.raises(TypeError, match="bcoo_dot_general"):
        fg @ jnp.ones((4, 2))
    with pytest.raises(ValueError, match="BCOO: data"):
        sparse.BCOO((jnp.ones(3), jnp.zeros((4, 2), np.int32)), shape=(4, 5))
    with pytest.raises(ValueError, match="bcoo_extract: arr"):
        sparse.bcoo_extract(fg, jnp.ones((5, 4)))
    with pytest.raises(NotImplementedError, match="bcoo_transpose"):
        sparse.bcoo_transpose(sparse.BCOO.fromdense(x, n_batch=1), permutation=(1, 0))
    with pytest.raises(NotImplementedError, match="bcoo_spdot_general"):
        fg @ fg.T
    # nse too small keeps the first entries in row-major order, as in jax
    same_bcoo(sparse.BCOO.fromdense(x, nse=2), jsparse.BCOO.fromdense(x, nse=2))
