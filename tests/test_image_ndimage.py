"""fungrad.image, fungrad.scipy.ndimage.map_coordinates and
fungrad.scipy.interpolate.RegularGridInterpolator against jax: values and dtypes (eager and
under jit), JVP/VJP and vmap, and the errors."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import jax.scipy.interpolate as jinterp
import jax.scipy.ndimage as jnd
import numpy as np
import pytest
from harness import (GRAD_TOL, QUICK_COMPILE, assert_same, compare, compare_transforms, rand,
                     to_fg, x64)

import fungrad
import fungrad.numpy as jnp
from fungrad import image
from fungrad.scipy import interpolate, ndimage
from fungrad.test_util import check_grads

RNG = np.random.default_rng(0)
IMG = rand(RNG, (5, 6, 2))
METHODS = ["linear", "cubic", "lanczos3", "lanczos5", "cubic-pytorch", "area"]


# --------------------------------------------------------------------------- image

def _quick(ref):
    """jax's reference compiled once, quickly (one program for a whole table of cases)."""
    return lambda *args: jax.jit(ref, compiler_options=QUICK_COMPILE)(*args)


@pytest.mark.parametrize("antialias", [True, False], ids=["aa", "no-aa"])
def test_resize_against_jax(antialias):
    def table(lib):
        return lambda x: tuple(lib.image.resize(x, s, method, antialias) for method in METHODS
                               for s in [(9, 4, 2), (3, 11, 2), (2, 2, 2)])
    compare(table(fungrad), table(jax), IMG, ref_out=_quick(table(jax))(IMG))


def test_resize_nearest_keeps_dtype():
    for x in [IMG, (IMG * 10).astype(np.int32), IMG > 0]:
        for shape in [(9, 4, 2), (3, 11, 2), (5, 6, 2)]:
            compare(lambda x, s=shape: image.resize(x, s, "nearest"),
                    lambda x, s=shape: jax.image.resize(x, s, "nearest"), x)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "bfloat16"])
def test_resize_dtypes(dtype):
    x = rand(RNG, (4, 3), dtype)
    compare(lambda x: image.resize(x, (6, 2), "linear"),
            lambda x: jax.image.resize(x, (6, 2), "linear"), x, jit_ref=True)


def test_resize_float64():
    with x64():
        x = rand(RNG, (4, 5), np.float64)
        compare(lambda x: image.resize(x, (7, 3), "lanczos3"),
                lambda x: jax.image.resize(x, (7, 3), "lanczos3"), x, jit_ref=True)


def test_resize_method_enum_and_names():
    m = image.ResizeMethod
    assert [e.name for e in m] == [e.name for e in jax.image.ResizeMethod]
    for name in ["nearest", "bilinear", "trilinear", "triangle", "bicubic", "tricubic",
                 "bicubic-pytorch", "lanczos5", "area"]:
        assert m.from_string(name).name == jax.image.ResizeMethod.from_string(name).name
    out = image.resize(jnp.asarray(IMG), (3, 4, 2), m.LANCZOS3)
    np.testing.assert_allclose(out, jax.image.resize(IMG, (3, 4, 2), "lanczos3"), 1e-5, 1e-6)


@pytest.mark.parametrize("method", ["linear", "cubic", "area"])
def test_resize_transforms(method):
    compare_transforms(lambda x: image.resize(x, (7, 3), method),
                       lambda x: jax.image.resize(x, (7, 3), method), [rand(RNG, (4, 5))], RNG,
                       fused_ref=True)


def test_scale_and_translate_against_jax():
    scale, trans = np.array([1.7, 0.6], np.float32), np.array([0.3, -1.2], np.float32)

    def both(lib, method):
        return lambda x, s, t: lib.image.scale_and_translate(x, (8, 4, 2), (0, 1), s, t, method)
    for method in ["linear", "cubic", "lanczos3", "cubic-pytorch"]:
        compare(both(fungrad, method), both(jax, method), IMG, scale, trans, jit_ref=True)
    compare(lambda x, s, t: image.scale_and_translate(x, (5, 6, 4), (-1,), s, t, "linear",
                                                      antialias=False),
            lambda x, s, t: jax.image.scale_and_translate(x, (5, 6, 4), (-1,), s, t, "linear",
                                                          antialias=False),
            IMG, scale[:1], trans[:1], jit_ref=True)


def test_scale_and_translate_grads_in_scale_and_translation():
    x = rand(RNG, (6, 5))

    def f(lib):
        return lambda s, t: lib.image.scale_and_translate(x, (4, 7), (0, 1), s, t, "cubic")
    s, t = np.array([0.8, 1.3], np.float32), np.array([0.2, -0.4], np.float32)
    compare_transforms(f(fungrad), f(jax), [s, t], RNG, vmap_axes=(), fused_ref=True)
    check_grads(f(fungrad), (jnp.asarray(s), jnp.asarray(t)), order=1, modes=["rev"],
                eps=1e-2, atol=3e-2, rtol=3e-2)


def test_image_errors():
    x = jnp.ones((3, 4))
    with pytest.raises(ValueError, match='Unknown resize method "bogus"'):
        image.resize(x, (2, 2), "bogus")
    with pytest.raises(ValueError, match="shape must have length"):
        image.resize(x, (2,), "linear")
    with pytest.raises(ValueError, match="Nearest neighbor resampling is not"):
        image.scale_and_translate(x, (3, 4), (0,), jnp.ones(1), jnp.zeros(1), "nearest")
    with pytest.raises(ValueError, match="one value per spatial dimension"):
        image.scale_and_translate(x, (3, 4), (0, 1), jnp.ones(1), jnp.zeros(1), "linear")
    with pytest.raises(TypeError, match="resize: method"):
        image.resize(x, (2, 2), 3)


# --------------------------------------------------------------------------- ndimage

MODES = ["constant", "nearest", "wrap", "mirror", "reflect"]
COORDS = [np.array([-1.7, -0.5, 0.0, 0.4, 1.5, 2.5, 3.2, 4.6], np.float32),
          np.array([0.2, 5.9, -0.6, 1.0, 2.5, 4.4, -2.3, 3.0], np.float32)]


@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates_against_jax(order):
    def table(lib):
        return lambda x, a, b: tuple(lib.scipy.ndimage.map_coordinates(x, [a, b], order, mode,
                                                                       cval=-3.0)
                                     for mode in MODES)
    args = (rand(RNG, (4, 5)), *COORDS)
    compare(table(fungrad), table(jax), *args, ref_out=_quick(table(jax))(*args))


def test_map_coordinates_dtypes():
    xi = (rand(RNG, (4, 5)) * 10).astype(np.int32)
    for order in (0, 1):
        compare(lambda x, a, b, o=order: ndimage.map_coordinates(x, [a, b], o),
                lambda x, a, b, o=order: jnd.map_coordinates(x, [a, b], o), xi, *COORDS)
    ints = [np.array([0, 3, -1], np.int32), np.array([4, 1, 2], np.int32)]
    compare(lambda x, a, b: ndimage.map_coordinates(x, [a, b], 1, "wrap"),
            lambda x, a, b: jnd.map_coordinates(x, [a, b], 1, "wrap"), rand(RNG, (4, 5)), *ints)
    with x64():
        compare(lambda x, a: ndimage.map_coordinates(x, [a], 1, "mirror"),
                lambda x, a: jnd.map_coordinates(x, [a], 1, "mirror"),
                rand(RNG, (6,), np.float64), COORDS[0].astype(np.float64))


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_map_coordinates_transforms(mode):
    x = rand(RNG, (4, 5))
    compare_transforms(lambda x, a, b: ndimage.map_coordinates(x, [a, b], 1, mode),
                       lambda x, a, b: jnd.map_coordinates(x, [a, b], 1, mode),
                       [x, COORDS[0][1::2], COORDS[1][1::2]], RNG, fused_ref=True)


def test_map_coordinates_errors():
    x = jnp.ones((3, 4))
    with pytest.raises(ValueError, match="coordinates must be a sequence of length input.ndim"):
        ndimage.map_coordinates(x, [jnp.zeros(2)], 1)
    with pytest.raises(NotImplementedError, match="does not support mode 'grid-wrap'"):
        ndimage.map_coordinates(x, [jnp.zeros(2)] * 2, 1, mode="grid-wrap")
    with pytest.raises(NotImplementedError, match="order 0 and 1, got 3"):
        ndimage.map_coordinates(x, [jnp.zeros(2)] * 2, 3)


# --------------------------------------------------------------------------- interpolate

GRID = (np.array([0., 0.5, 1.5, 3.], np.float32), np.array([-1., 0., 2.], np.float32))
VALUES = rand(RNG, (4, 3, 2))
XI = np.array([[0.2, -0.5], [1.5, 1.9], [2.9, 0.1], [-0.1, 0.0], [1.0, 2.5], [3., -1.]],
              np.float32)


@pytest.mark.parametrize("method", ["linear", "nearest"])
@pytest.mark.parametrize("fill_value", [np.nan, None, -1.0], ids=["nan", "extrapolate", "-1"])
def test_regular_grid_interpolator_against_jax(method, fill_value):
    def both(lib):
        def f(g0, g1, v, xi):
            interp = lib.scipy.interpolate.RegularGridInterpolator((g0, g1), v, method,
                                                                   fill_value=fill_value)
            return interp(xi), interp(xi.reshape(3, 2, 2))
        return f
    compare(both(fungrad), both(jax), *GRID, VALUES, XI, jit_ref=True)


def test_regular_grid_interpolator_points_forms():
    f = interpolate.RegularGridInterpolator(to_fg(GRID), jnp.asarray(VALUES[..., 0]))
    ones = (jnp.asarray(GRID[0]),), jnp.asarray(VALUES[:, 0, 0])
    ints = interpolate.RegularGridInterpolator(to_fg(GRID), jnp.arange(12).reshape(4, 3))
    ours = (f((jnp.asarray(XI[:, 0]), jnp.asarray(XI[:, 1]))), f(jnp.asarray(XI[0])),
            f(jnp.asarray(XI), method="nearest"),
            interpolate.RegularGridInterpolator(*ones)(jnp.asarray(XI[:, :1])),
            ints(jnp.asarray(XI)))

    @jax.jit
    def ref(grid, values, xi):
        g = jinterp.RegularGridInterpolator(grid, values[..., 0])
        return (g((xi[:, 0], xi[:, 1])), g(xi[0]), g(xi, method="nearest"),
                jinterp.RegularGridInterpolator(grid[:1], values[:, 0, 0])(xi[:, :1]),
                jinterp.RegularGridInterpolator(grid, jjnp.arange(12).reshape(4, 3))(xi))
    assert_same(ours, ref(GRID, VALUES, XI))


def test_regular_grid_interpolator_transforms_and_pytree():
    inside = XI[:3]

    def f(lib):
        return lambda v, xi: lib.scipy.interpolate.RegularGridInterpolator(GRID, v)(xi)
    compare_transforms(f(fungrad), f(jax), [VALUES[..., 0], inside], RNG, vmap_axes=(),
                       fused_ref=True)
    interp = interpolate.RegularGridInterpolator(to_fg(GRID), jnp.asarray(VALUES))
    leaves, treedef = fungrad.tree.flatten(interp)
    assert len(leaves) == 4 and fungrad.tree.unflatten(treedef, leaves).method == "linear"
    out = fungrad.jit(lambda f, xi: f(xi))(interp, jnp.asarray(XI))
    ref_interp = jinterp.RegularGridInterpolator(GRID, VALUES)
    assert_same(out, jax.jit(lambda f, xi: f(xi))(ref_interp, XI))
    grad = fungrad.grad(lambda f: jnp.sum(f(jnp.asarray(inside))))(interp)
    ref = jax.jit(jax.grad(lambda f: jjnp.sum(f(inside))))(ref_interp)
    assert_same(grad.values, ref.values, GRAD_TOL, check_weak=False)


def test_regular_grid_interpolator_errors():
    v = jnp.asarray(VALUES)
    with pytest.raises(ValueError, match="method 'cubic' is not defined"):
        interpolate.RegularGridInterpolator(to_fg(GRID), v, method="cubic")
    with pytest.raises(NotImplementedError, match="bounds_error"):
        interpolate.RegularGridInterpolator(to_fg(GRID), v, bounds_error=True)
    with pytest.raises(ValueError, match="there are 4 point arrays, but values has 3"):
        interpolate.RegularGridInterpolator(to_fg(GRID) * 2, v)
    with pytest.raises(ValueError, match="fill_value must be either 'None' or of a type"):
        interpolate.RegularGridInterpolator(to_fg(GRID), v, fill_value=1j)
    with pytest.raises(ValueError, match="have dimension 3, but this RegularGridInterpolator"):
        interpolate.RegularGridInterpolator(to_fg(GRID), v)(jnp.ones((2, 3)))
