"""``fungrad.image`` (``jax.image``): resizing and resampling images with separable kernels.

A resize along one axis is a matrix product: the output pixel ``j`` takes the input pixels
``i`` weighted by ``kernel((sample_j - i) / kernel_scale)``, normalised to sum to one, where
``sample_j = (j + 0.5) / scale - translation / scale - 0.5`` is the output pixel's centre in
input coordinates (pixels are half-centred, as in JAX, TensorFlow and Pillow). All the
spatial axes are contracted with their weight matrices in one ``einsum``, so ``resize`` and
``scale_and_translate`` differentiate (in the image, and in ``scale`` and ``translation``),
batch and compile like any composite. With ``antialias`` a downsampling kernel is widened by
``1 / scale``, a low-pass filter. Nearest-neighbour resizing is a gather.
"""
from __future__ import annotations

import enum
from typing import Any, Callable, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.lax import Precision
from fungrad.numpy._util import canonicalize_axis, ensure_arraylike, promote_dtypes_inexact

__all__ = ["ResizeMethod", "resize", "scale_and_translate"]
__dir__ = public_dir(__all__)


class ResizeMethod(enum.Enum):
    """An image resampling method (``jax.image.ResizeMethod``).

    ``NEAREST``: nearest neighbour. ``LINEAR``: the triangle kernel. ``LANCZOS3``,
    ``LANCZOS5``: Lanczos kernels of radius 3 and 5. ``CUBIC``: Keys' cubic kernel
    (``a = -0.5``, as Pillow and TensorFlow). ``CUBIC_PYTORCH``: PyTorch's bicubic resize
    (``CUBIC`` with antialiasing; without, OpenCV's ``a = -0.75`` kernel with the edge pixels
    repeated). ``AREA``: the average of the input pixels an output pixel covers.
    """
    NEAREST = 0
    LINEAR = 1
    LANCZOS3 = 2
    LANCZOS5 = 3
    CUBIC = 4
    CUBIC_PYTORCH = 5
    AREA = 6

    @staticmethod
    def from_string(s: str) -> "ResizeMethod":
        """The method a name stands for: ``"nearest"``, ``"linear"`` (``"bilinear"``,
        ``"trilinear"``, ``"triangle"``), ``"lanczos3"``, ``"lanczos5"``, ``"cubic"``
        (``"bicubic"``, ``"tricubic"``), ``"cubic-pytorch"`` (``"bicubic-pytorch"``),
        ``"area"``."""
        for names, method in _NAMES:
            if s in names:
                return method
        raise ValueError(f'Unknown resize method "{s}"')


_NAMES = ((("nearest",), ResizeMethod.NEAREST),
          (("linear", "bilinear", "trilinear", "triangle"), ResizeMethod.LINEAR),
          (("lanczos3",), ResizeMethod.LANCZOS3), (("lanczos5",), ResizeMethod.LANCZOS5),
          (("cubic", "bicubic", "tricubic"), ResizeMethod.CUBIC),
          (("cubic-pytorch", "bicubic-pytorch"), ResizeMethod.CUBIC_PYTORCH),
          (("area",), ResizeMethod.AREA))


# --------------------------------------------------------------------------- kernels
# Each takes the (non-negative) distance ``x`` from the sample point, in kernel units.

def _triangle(x: Any) -> Any:
    return jnp.maximum(0, 1 - jnp.abs(x))


def _lanczos(radius: float) -> Callable[[Any], Any]:
    def kernel(x: Any) -> Any:
        y = radius * jnp.sin(np.pi * x) * jnp.sin(np.pi * x / radius)
        out = jnp.where(x > 1e-3, y / jnp.where(x != 0, np.pi ** 2 * x ** 2, 1), 1)
        return jnp.where(x > radius, 0., out)
    return kernel


def _cubic(a: float) -> Callable[[Any], Any]:
    """Keys' cubic convolution kernel with parameter ``a`` (support ``[0, 2)``)."""
    def kernel(x: Any) -> Any:
        out = ((a + 2) * x - (a + 3)) * x * x + 1
        out = jnp.where(x >= 1, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, out)
        return jnp.where(x >= 2, 0., out)
    return kernel


# method -> (radius, kernel); AREA's weights are interval overlaps, not a kernel
_KERNELS: dict[ResizeMethod, tuple[int, Callable | None]] = {
    ResizeMethod.LINEAR: (1, _triangle), ResizeMethod.LANCZOS3: (3, _lanczos(3.)),
    ResizeMethod.LANCZOS5: (5, _lanczos(5.)), ResizeMethod.CUBIC: (2, _cubic(-0.5)),
    ResizeMethod.CUBIC_PYTORCH: (2, _cubic(-0.75)), ResizeMethod.AREA: (1, None)}


def _normalize(weights: Any) -> Any:
    """Columns scaled to sum to one; columns whose sum is about zero become zero."""
    total = jnp.sum(weights, axis=0, keepdims=True)
    return jnp.where(jnp.abs(total) > 1000. * float(np.finfo(np.float32).eps),
                     weights / jnp.where(total != 0, total, 1), 0)


def _weight_matrix(in_size: int, out_size: int, scale: Any, translation: Any,
                   kernel: Callable | None, antialias: bool, radius: int | None) -> Any:
    """The ``(in_size, out_size)`` matrix resampling one axis. ``radius`` (given only for
    PyTorch's bicubic resize without antialiasing) extends the kernel over that many pixels
    past each edge, their weights moved onto the edge pixels."""
    dtype = jnp.result_type(scale, translation)
    inv_scale = 1. / scale
    out_index = jnp.arange(out_size, dtype=dtype)
    sample = (out_index + 0.5) * inv_scale - translation * inv_scale - 0.5
    if kernel is None:  # AREA: overlap of [j, j + 1) / scale with the input pixel [i, i + 1)
        left = out_index * inv_scale - translation * inv_scale
        starts = jnp.arange(in_size, dtype=dtype)[:, None]
        weights = jnp.maximum(0., jnp.minimum(left + inv_scale, starts + 1)
                              - jnp.maximum(left, starts))
    else:
        kernel_scale = jnp.maximum(inv_scale, 1.) if antialias else 1.
        pad = radius or 0
        in_index = jnp.arange(-pad, in_size + pad, dtype=dtype)
        weights = kernel(jnp.abs(sample[None, :] - in_index[:, None]) / kernel_scale)
        if radius is not None:
            rows = jnp.clip(in_index.astype(np.int32), 0, in_size - 1)
            return _normalize(jnp.zeros((in_size, out_size), dtype).at[rows].add(weights))
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return jnp.where(inside[None, :], _normalize(weights), 0)


def _resample(image: Any, shape: tuple[int, ...], spatial_dims: Sequence[int], scale: Any,
              translation: Any, method: ResizeMethod, antialias: bool, precision: Any) -> Any:
    """``image`` resampled to ``shape`` along ``spatial_dims`` (``image`` inexact)."""
    if not spatial_dims:
        return image
    if method == ResizeMethod.CUBIC_PYTORCH and antialias:
        method = ResizeMethod.CUBIC
    radius, kernel = _KERNELS[method]
    edge_radius = radius if method == ResizeMethod.CUBIC_PYTORCH else None
    operands: list = [image, list(range(image.ndim))]
    out_indices = list(range(image.ndim))
    for i, d in enumerate(spatial_dims):
        d = canonicalize_axis(d, image.ndim, "scale_and_translate")
        w = _weight_matrix(image.shape[d], shape[d], scale[i], translation[i], kernel,
                           antialias, edge_radius)
        operands += [w.astype(image.dtype), [d, image.ndim + i]]
        out_indices[d] = image.ndim + i
    return jnp.einsum(*operands, out_indices, precision=precision)


def _method(method: str | ResizeMethod) -> ResizeMethod:
    if isinstance(method, str):
        return ResizeMethod.from_string(method)
    if not isinstance(method, ResizeMethod):
        raise TypeError(f"resize: method must be a string or a ResizeMethod, got {method!r}")
    return method


def _check_shape(fname: str, image: Any, shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != image.ndim:
        raise ValueError(f"{fname}: shape must have length equal to the number of dimensions "
                         f"of x;  {shape} vs {image.shape}")
    return shape


def scale_and_translate(image: Any, shape: Sequence[int], spatial_dims: Sequence[int],
                        scale: Any, translation: Any, method: str | ResizeMethod,
                        antialias: bool = True, precision: Any = Precision.HIGHEST) -> Any:
    """Resample ``image`` to ``shape``, mapping input location ``x`` along
    ``spatial_dims[k]`` to ``x * scale[k] + translation[k]`` (``jax.image.scale_and_translate``).

    Pixels are half-centred: the pixel at index ``i`` covers ``[i, i + 1)`` and its centre
    is ``i + 0.5``. Output pixels whose centre maps outside the input are zero.
    ``torch.nn.functional.interpolate(..., align_corners=True)`` is
    ``scale = (n - 1) / (m - 1)``, ``translation = 0.5 * (1 - scale)``.

    Args:
      image: the array to resample.
      shape: the output shape (all of ``image``'s dimensions).
      spatial_dims: the ``K`` dimensions that ``scale`` and ``translation`` apply to.
      scale, translation: ``K`` values each (arrays: they can be differentiated).
      method: a ``ResizeMethod`` or its name, any but ``NEAREST``.
      antialias: widen the kernel when downsampling, a low-pass filter.
      precision: the ``einsum``'s precision.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.image import scale_and_translate
        >>> scale_and_translate(jnp.array([0., 1., 2., 3.]), (4,), (0,), jnp.array([1.]),
        ...                     jnp.array([1.]), "linear")
        Array([0., 0., 1., 2.], dtype=float32)
    """
    image = ensure_arraylike("scale_and_translate", image)
    shape = _check_shape("scale_and_translate", image, shape)
    method = _method(method)
    if method == ResizeMethod.NEAREST:
        raise ValueError("Nearest neighbor resampling is not currently supported for "
                         "scale_and_translate.")
    image, = promote_dtypes_inexact(image)
    scale, translation = promote_dtypes_inexact(
        *ensure_arraylike("scale_and_translate", scale, translation))
    if scale.shape != (len(spatial_dims),) or translation.shape != (len(spatial_dims),):
        raise ValueError(f"scale_and_translate: scale {scale.shape} and translation "
                         f"{translation.shape} must have one value per spatial dimension "
                         f"({len(spatial_dims)})")
    return _resample(image, shape, spatial_dims, scale, translation, method, antialias,
                     precision)


def _resize_nearest(image: Any, shape: tuple[int, ...]) -> Any:
    """Pick input index ``floor((j + 0.5) * m / n)`` for output index ``j`` (float32, as
    JAX computes it)."""
    for d, (m, n) in enumerate(zip(image.shape, shape)):
        if m != n:
            offsets = np.floor((np.arange(n, dtype=np.float32) + np.float32(0.5))
                               * np.float32(m) / np.float32(n)).astype(np.int32)
            image = jnp.take(image, jnp.asarray(offsets), axis=d)
    return image


def resize(image: Any, shape: Sequence[int], method: str | ResizeMethod,
           antialias: bool = True, precision: Any = Precision.HIGHEST) -> Any:
    """Resize ``image`` to ``shape`` (``jax.image.resize``).

    Every dimension whose size changes is resampled, so keep batch and channel sizes as
    they are. ``NEAREST`` keeps the dtype and ignores ``antialias`` and ``precision``; the
    other methods (see ``ResizeMethod``) return a floating dtype. ``antialias`` only affects
    downsampling. There is no ``align_corners``: use ``scale_and_translate``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.image import resize
        >>> resize(jnp.array([[0., 1.], [2., 3.]]), (2, 4), "linear")
        Array([[0.  , 0.25, 0.75, 1.  ],
               [2.  , 2.25, 2.75, 3.  ]], dtype=float32)
        >>> resize(jnp.array([1, 2, 3]), (6,), "nearest")
        Array([1, 1, 2, 2, 3, 3], dtype=int32)
    """
    image = ensure_arraylike("resize", image)
    shape = _check_shape("resize", image, shape)
    method = _method(method)
    if method == ResizeMethod.NEAREST:
        return _resize_nearest(image, shape)
    image, = promote_dtypes_inexact(image)
    # Unchanged dimensions are skipped: every kernel interpolates (identity in, identity out).
    dims = [d for d in range(image.ndim) if image.shape[d] != shape[d]]
    scale = [1.0 if shape[d] == 0 else shape[d] / image.shape[d] for d in dims]
    return _resample(image, shape, dims, scale, [0.] * len(dims), method, antialias, precision)
