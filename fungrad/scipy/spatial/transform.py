"""``fungrad.scipy.spatial.transform`` (``jax.scipy.spatial.transform``): 3-D rotations
held as unit quaternions, and spherical linear interpolation between them, as SciPy's.

A ``Rotation`` stores quaternions in SciPy's scalar-last order ``(x, y, z, w)``, one per
row of an array of shape ``(..., 4)``; every conversion works on the last axis, so batches
of any shape broadcast as in JAX. ``Rotation`` and ``Slerp`` are NamedTuples, hence
pytrees: they pass through ``jit``, ``vmap`` and ``grad`` like the arrays they hold.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import random
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import to_inexact_dtype

__all__ = ["Rotation", "Slerp"]
__dir__ = public_dir(__all__)

# Below this angle (radians) the rotation-vector scales use their Taylor series.
_SMALL_ANGLE = 1e-3
# How close the middle Euler angle must come to 0 or pi to count as gimbal lock.
_GIMBAL_EPS = 1e-7


def _float_array(method: str, x: Any, core_shape: tuple[int, ...]) -> Any:
    """``x`` as a floating array whose trailing axes are ``core_shape``, else a
    ``ValueError`` naming ``Rotation.<method>`` and the shape it got."""
    x = jnp.asarray(x)
    if x.ndim < len(core_shape) or x.shape[-len(core_shape):] != core_shape:
        want = ", ".join(["..."] + [str(n) for n in core_shape])
        raise ValueError(f"Rotation.{method} expects an array of shape ({want}), "
                         f"got shape {x.shape}.")
    return x.astype(to_inexact_dtype(x.dtype))


def _euler_axes(method: str, seq: str, lengths: Sequence[int]) -> tuple[list[int], bool]:
    """The axis indices (x=0, y=1, z=2) of an Euler sequence and whether it is extrinsic
    (lower case) rather than intrinsic (upper case)."""
    if len(seq) not in lengths:
        raise ValueError(f"Rotation.{method} expects {' to '.join(map(str, lengths))} axes "
                         f"in `seq`, got {seq!r}.")
    if not (set(seq) <= set("xyz") or set(seq) <= set("XYZ")):
        raise ValueError(f"Rotation.{method} expects the axes of `seq` to be all from "
                         f"'xyz' (extrinsic) or all from 'XYZ' (intrinsic), got {seq!r}.")
    if any(a == b for a, b in zip(seq, seq[1:])):
        raise ValueError(f"Rotation.{method} expects consecutive axes to differ, got {seq!r}.")
    return ["xyz".index(axis) for axis in seq.lower()], seq.islower()


def _norm(v: Any) -> Any:
    return jnp.sqrt(jnp.sum(v * v, axis=-1))


def _normalize(quat: Any) -> Any:
    return quat / _norm(quat)[..., None]


def _positive_w(quat: Any) -> Any:
    """The same rotations with ``w >= 0`` (``q`` and ``-q`` rotate alike)."""
    return jnp.where(quat[..., 3:] < 0, -quat, quat)


def _compose(p: Any, q: Any) -> Any:
    """The Hamilton product ``p q``: the rotation ``q`` followed by ``p``."""
    pv, pw, qv, qw = p[..., :3], p[..., 3:], q[..., :3], q[..., 3:]
    v = pw * qv + qw * pv + jnp.cross(pv, qv)
    w = pw * qw - jnp.sum(pv * qv, axis=-1, keepdims=True)
    return jnp.concatenate([v, w], axis=-1)


def _elementary_quat(axis: int, angle: Any) -> Any:
    """The quaternions of rotations by ``angle`` about one coordinate axis."""
    zero = jnp.zeros_like(angle)
    parts = [zero, zero, zero, jnp.cos(angle / 2)]
    parts[axis] = jnp.sin(angle / 2)
    return jnp.stack(parts, axis=-1)


def _matrix_to_quat(matrix: Any) -> Any:
    """Shepperd's method: of the four formulas for the quaternion, each exact, use the one
    dividing by the largest of ``m00, m11, m22, trace`` (the best-conditioned)."""
    m = matrix
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        parts = [None] * 4
        parts[i] = 1 - trace + 2 * m[..., i, i]
        parts[j] = m[..., j, i] + m[..., i, j]
        parts[k] = m[..., k, i] + m[..., i, k]
        parts[3] = m[..., k, j] - m[..., j, k]
        candidates.append(jnp.stack(parts, axis=-1))
    candidates.append(jnp.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                                 m[..., 1, 0] - m[..., 0, 1], 1 + trace], axis=-1))
    choice = jnp.argmax(jnp.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], trace], -1), -1)
    quat = jnp.take_along_axis(jnp.stack(candidates, axis=-2), choice[..., None, None], axis=-2)
    return _normalize(quat[..., 0, :])


def _quat_to_euler(quat: Any, axes: list[int], extrinsic: bool) -> Any:
    """Euler angles by Bernardes and Viollet's method (2022), as SciPy: the middle angle
    from the quaternion's components, the outer ones from half their sum and difference;
    in gimbal lock the third angle is set to zero."""
    i, j, k = axes if extrinsic else axes[::-1]
    symmetric = i == k  # proper Euler angles (e.g. "zxz"); else Tait-Bryan
    if symmetric:
        k = 3 - i - j
    sign = (i - j) * (j - k) * (k - i) // 2  # the parity of the permutation (i, j, k)
    w, qi, qj, qk = quat[..., 3], quat[..., i], quat[..., j], quat[..., k] * sign
    if symmetric:
        a, b, c, d = w, qi, qj, qk
    else:
        a, b, c, d = w - qj, qi + qk, qj + w, qk - qi
    middle = 2 * jnp.arctan2(jnp.hypot(c, d), jnp.hypot(a, b))
    half_sum, half_diff = jnp.arctan2(b, a), jnp.arctan2(d, c)
    at_zero = jnp.abs(middle) <= _GIMBAL_EPS
    locked = at_zero | (jnp.abs(middle - np.pi) <= _GIMBAL_EPS)
    lock_angle = jnp.where(at_zero, 2 * half_sum, 2 * half_diff * (-1 if extrinsic else 1))
    first, third = half_sum - half_diff, half_sum + half_diff
    outer = [first, third] if extrinsic else [third, first]  # angles 0 and 2
    angles = [jnp.where(locked, lock_angle, outer[0]), middle, jnp.where(locked, 0, outer[1])]
    if not symmetric:
        t = 2 if extrinsic else 0
        angles[t] = angles[t] * sign
        angles[1] = angles[1] - np.pi / 2
    angles = jnp.stack(angles, axis=-1)
    return (angles + np.pi) % (2 * np.pi) - np.pi


class Rotation(NamedTuple):
    """Rotations in three dimensions (``jax.scipy.spatial.transform.Rotation``, after
    :class:`scipy.spatial.transform.Rotation`).

    Build one with a ``from_*`` classmethod (never from raw quaternions that are not of
    unit norm), convert it with the ``as_*`` methods, compose with ``*`` (``(p * q)`` is
    ``q`` followed by ``p``) and rotate vectors with ``apply``. A rotation holds one
    quaternion (``quat`` of shape ``(4,)``, ``single``) or a stack of them
    (``(n, 4)``), which ``len``, indexing and ``concatenate`` treat as a sequence.

    Attributes:
        quat: unit quaternions, scalar last ``(x, y, z, w)``, of shape ``(..., 4)``.

    Examples:
        >>> from fungrad.scipy.spatial.transform import Rotation
        >>> r = Rotation.from_euler("z", 90, degrees=True)
        >>> r.as_rotvec()
        Array([0.       , 0.       , 1.5707964], dtype=float32)
        >>> r.apply(jnp.array([1.0, 0.0, 0.0])).round(6)
        Array([0., 1., 0.], dtype=float32)
        >>> (r * Rotation.from_euler("x", 90, degrees=True)).as_matrix().round(6)
        Array([[0., 0., 1.],
               [1., 0., 0.],
               [0., 1., 0.]], dtype=float32)
    """

    quat: Any

    @classmethod
    def concatenate(cls, rotations: Sequence[Rotation]) -> Rotation:
        """Stack rotations (single or not) into one sequence of rotations.

        Args:
            rotations: the ``Rotation`` objects, in order.

        Returns:
            A ``Rotation`` of ``sum(len(r))`` rotations, a single one counting as one.
        """
        return cls(jnp.concatenate([jnp.atleast_2d(r.quat) for r in rotations]))

    @classmethod
    def from_euler(cls, seq: str, angles: Any, degrees: bool = False) -> Rotation:
        """Rotations from Euler angles: successive rotations about coordinate axes.

        Args:
            seq: one to three axes, ``"xyz"`` letters for extrinsic rotations (about the
                fixed frame's axes) or ``"XYZ"`` for intrinsic ones (about the rotating
                frame's); consecutive axes must differ.
            angles: the angles, of shape ``(..., len(seq))``; a scalar for one axis.
            degrees: whether ``angles`` are in degrees rather than radians.

        Returns:
            The rotations, one per row of ``angles``.
        """
        axes, extrinsic = _euler_axes("from_euler", seq, (1, 2, 3))
        angles = _float_array("from_euler", jnp.atleast_1d(jnp.asarray(angles)), (len(seq),))
        if degrees:
            angles = jnp.deg2rad(angles)
        quat = _elementary_quat(axes[0], angles[..., 0])
        for n, axis in enumerate(axes[1:], start=1):
            step = _elementary_quat(axis, angles[..., n])
            quat = _compose(step, quat) if extrinsic else _compose(quat, step)
        return cls(quat)

    @classmethod
    def from_matrix(cls, matrix: Any) -> Rotation:
        """Rotations from rotation matrices of shape ``(..., 3, 3)`` (Shepperd's method; a
        matrix that is not orthogonal gives the normalised quaternion of the same formulas,
        an approximation of the nearest rotation, as in SciPy)."""
        return cls(_matrix_to_quat(_float_array("from_matrix", matrix, (3, 3))))

    @classmethod
    def from_mrp(cls, mrp: Any) -> Rotation:
        """Rotations from Modified Rodrigues Parameters ``axis * tan(angle / 4)``, of shape
        ``(..., 3)``."""
        mrp = _float_array("from_mrp", mrp, (3,))
        norm2_plus_1 = jnp.sum(mrp * mrp, axis=-1, keepdims=True) + 1
        return cls(jnp.concatenate([2 * mrp, 2 - norm2_plus_1], axis=-1) / norm2_plus_1)

    @classmethod
    def from_quat(cls, quat: Any) -> Rotation:
        """Rotations from quaternions ``(x, y, z, w)`` of shape ``(..., 4)``, normalised to
        unit norm."""
        return cls(_normalize(_float_array("from_quat", quat, (4,))))

    @classmethod
    def from_rotvec(cls, rotvec: Any, degrees: bool = False) -> Rotation:
        """Rotations from rotation vectors ``axis * angle``.

        Args:
            rotvec: the vectors, of shape ``(..., 3)``.
            degrees: whether their norms are in degrees rather than radians.

        Returns:
            The rotations, ``(sin(angle / 2) axis, cos(angle / 2))`` (with a Taylor series
            of ``sin(angle / 2) / angle`` for small angles, so that it differentiates at 0).
        """
        rotvec = _float_array("from_rotvec", rotvec, (3,))
        if degrees:
            rotvec = jnp.deg2rad(rotvec)
        angle = _norm(rotvec)
        angle2 = angle * angle
        scale = jnp.where(angle <= _SMALL_ANGLE, 0.5 - angle2 / 48 + angle2 * angle2 / 3840,
                          jnp.sin(angle / 2) / angle)
        return cls(jnp.concatenate([scale[..., None] * rotvec, jnp.cos(angle / 2)[..., None]],
                                   axis=-1))

    @classmethod
    def identity(cls, num: int | None = None, dtype: Any = float) -> Rotation:
        """The identity rotation: single, or ``num`` of them.

        Args:
            num: how many (``None``: a single rotation).
            dtype: the quaternion's dtype.
        """
        quat = jnp.array([0.0, 0.0, 0.0, 1.0], dtype=dtype)
        return cls(quat if num is None else jnp.broadcast_to(quat, (num, 4)))

    @classmethod
    def random(cls, random_key: Any, num: int | None = None) -> Rotation:
        """Rotations drawn uniformly (under the Haar measure): normalised standard normal
        quaternions, as SciPy draws them.

        Args:
            random_key: a ``fungrad.random`` key.
            num: how many (``None``: a single rotation).
        """
        return cls.from_quat(random.normal(random_key, (4,) if num is None else (num, 4)))

    def __getitem__(self, indexer: Any) -> Rotation:
        """The rotation(s) at ``indexer`` (an int, slice or index array) of a sequence."""
        if self.single:
            raise TypeError("Single rotation is not subscriptable.")
        return Rotation(self.quat[indexer])

    def __len__(self) -> int:
        """The number of rotations in a sequence (a single rotation has no length)."""
        if self.single:
            raise TypeError("Single rotation has no len().")
        return self.quat.shape[0]

    def __mul__(self, other: Rotation) -> Rotation:
        """The composition: ``other`` followed by ``self``, broadcast over both."""
        return Rotation.from_quat(_compose(self.quat, other.quat))

    def apply(self, vectors: Any, inverse: bool = False) -> Any:
        """Rotate vectors.

        Args:
            vectors: of shape ``(..., 3)``, broadcast against the rotations.
            inverse: apply the inverse rotations instead.

        Returns:
            The rotated vectors, of the broadcast batch shape times ``(3,)``.
        """
        vectors = jnp.asarray(vectors)
        if vectors.shape[-1:] != (3,):
            raise ValueError(f"Rotation.apply expects vectors of shape (..., 3), got shape "
                             f"{vectors.shape}.")
        try:
            np.broadcast_shapes(self.quat.shape[:-1], vectors.shape[:-1])
        except ValueError:
            raise ValueError(f"Rotation.apply cannot broadcast rotations of shape "
                             f"{self.quat.shape[:-1]} against vectors of shape "
                             f"{vectors.shape}.") from None
        matrix = self.as_matrix()
        if inverse:
            matrix = jnp.swapaxes(matrix, -1, -2)
        return jnp.matmul(matrix, vectors[..., None])[..., 0]

    def as_euler(self, seq: str, degrees: bool = False) -> Any:
        """Euler angles, each in ``[-pi, pi)`` (the middle one in ``[0, pi]`` for proper
        Euler sequences, ``[-pi/2, pi/2]`` otherwise).

        Args:
            seq: three axes, ``"xyz"`` letters for extrinsic, ``"XYZ"`` for intrinsic
                rotations (see ``from_euler``).
            degrees: return degrees rather than radians.

        Returns:
            The angles, of shape ``(..., 3)``. In gimbal lock (middle angle 0 or pi) only
            the sum or difference of the outer angles is defined: the third is set to 0.
        """
        axes, extrinsic = _euler_axes("as_euler", seq, (3,))
        angles = _quat_to_euler(self.quat, axes, extrinsic)
        return jnp.rad2deg(angles) if degrees else angles

    def as_matrix(self) -> Any:
        """The rotation matrices, of shape ``(..., 3, 3)``."""
        x, y, z, w = (self.quat[..., n] for n in range(4))
        x2, y2, z2, w2 = x * x, y * y, z * z, w * w
        xy, zw, xz, yw, yz, xw = x * y, z * w, x * z, y * w, y * z, x * w
        rows = [[x2 - y2 - z2 + w2, 2 * (xy - zw), 2 * (xz + yw)],
                [2 * (xy + zw), -x2 + y2 - z2 + w2, 2 * (yz - xw)],
                [2 * (xz - yw), 2 * (yz + xw), -x2 - y2 + z2 + w2]]
        return jnp.stack([jnp.stack(row, axis=-1) for row in rows], axis=-2)

    def as_mrp(self) -> Any:
        """Modified Rodrigues Parameters ``axis * tan(angle / 4)`` with ``angle <= pi``
        (the shorter of the two, so their norm is at most 1), of shape ``(..., 3)``."""
        quat = _positive_w(self.quat)
        return quat[..., :3] / (1 + quat[..., 3:])

    def as_quat(self, canonical: bool = False, scalar_first: bool = False) -> Any:
        """The quaternions, of shape ``(..., 4)``.

        Args:
            canonical: choose of ``q`` and ``-q`` the one whose first nonzero component in
                the order ``w, x, y, z`` is positive.
            scalar_first: order the components ``(w, x, y, z)`` rather than ``(x, y, z, w)``.
        """
        quat = self.quat
        if canonical:
            neg, zero = quat[..., 3] < 0, quat[..., 3] == 0
            for n in range(3):
                neg = neg | (zero & (quat[..., n] < 0))
                zero = zero & (quat[..., n] == 0)
            quat = jnp.where(neg[..., None], -quat, quat)
        return jnp.roll(quat, 1, axis=-1) if scalar_first else quat

    def as_rotvec(self, degrees: bool = False) -> Any:
        """Rotation vectors ``axis * angle`` with ``angle`` in ``[0, pi]``, of shape
        ``(..., 3)`` (in degrees with ``degrees=True``); a Taylor series near angle 0 keeps
        them differentiable there."""
        quat = _positive_w(self.quat)
        angle = 2 * jnp.arctan2(_norm(quat[..., :3]), quat[..., 3])
        angle2 = angle * angle
        scale = jnp.where(angle <= _SMALL_ANGLE, 2 + angle2 / 12 + 7 * angle2 * angle2 / 2880,
                          angle / jnp.sin(angle / 2))
        if degrees:
            scale = jnp.rad2deg(scale)
        return scale[..., None] * quat[..., :3]

    def inv(self) -> Rotation:
        """The inverse rotations (the conjugate quaternions)."""
        return Rotation(jnp.concatenate([-self.quat[..., :3], self.quat[..., 3:]], axis=-1))

    def magnitude(self) -> Any:
        """The rotation angles, in ``[0, pi]`` radians, of shape ``(...)``."""
        return 2 * jnp.arctan2(_norm(self.quat[..., :3]), jnp.abs(self.quat[..., 3]))

    def mean(self, weights: Any = None) -> Rotation:
        """The mean of a sequence of rotations (Markley et al., 2007): the quaternion that
        minimises the weighted sum of squared chordal distances, the eigenvector of largest
        eigenvalue of ``sum_i w_i q_i q_i^T`` (its sign is arbitrary).

        Args:
            weights: one non-negative weight per rotation (default: equal weights).

        Returns:
            A single ``Rotation``.
        """
        n = len(self)
        w = jnp.ones(n, self.quat.dtype) if weights is None else \
            jnp.asarray(weights, dtype=self.quat.dtype)
        if w.ndim != 1:
            raise ValueError(f"Rotation.mean expects 1-dimensional `weights`, got shape "
                             f"{w.shape}.")
        if w.shape[0] != n:
            raise ValueError(f"Rotation.mean expects one weight per rotation, got {w.shape[0]} "
                             f"weights and {n} rotations.")
        _, vectors = jnp.linalg.eigh((w * self.quat.T) @ self.quat)
        return Rotation(vectors[:, -1])

    @property
    def single(self) -> bool:
        """Whether this is one rotation (``quat`` of shape ``(4,)``) rather than a sequence."""
        return self.quat.ndim == 1


class Slerp(NamedTuple):
    """Spherical linear interpolation of rotations (``jax.scipy.spatial.transform.Slerp``,
    after :class:`scipy.spatial.transform.Slerp`): between consecutive key rotations the
    rotation turns at constant angular velocity about a fixed axis.

    Build it with ``Slerp.init(times, rotations)`` and call it with the times to
    interpolate at. Times are not checked against the key times (SciPy raises; a traced
    time cannot be checked): before the first key time the first interval is extrapolated;
    after the last the result is JAX's, which clamps the interval's index and is no
    extrapolation.

    Attributes:
        times: the key times, strictly increasing, of shape ``(n,)``.
        timedelta: the lengths of the ``n - 1`` intervals.
        rotations: the rotation at the start of each interval.
        rotvecs: the rotation vector from the start to the end of each interval.

    Examples:
        >>> from fungrad.scipy.spatial.transform import Rotation, Slerp
        >>> keys = Rotation.from_euler("z", jnp.array([[0.0], [90.0]]), degrees=True)
        >>> slerp = Slerp.init(jnp.array([0.0, 1.0]), keys)
        >>> slerp(jnp.array([0.5, 1.0])).as_rotvec(degrees=True).round(4)
        Array([[ 0.,  0., 45.],
               [ 0.,  0., 90.]], dtype=float32)
    """

    times: Any
    timedelta: Any
    rotations: Rotation
    rotvecs: Any

    @classmethod
    def init(cls, times: Any, rotations: Rotation) -> Slerp:
        """An interpolator through the key ``rotations`` at the key ``times``.

        Args:
            times: strictly increasing times, one per rotation (not checked: they may be
                traced).
            rotations: a ``Rotation`` sequence of at least two rotations.
        """
        if not isinstance(rotations, Rotation):
            raise TypeError(f"Slerp.init expects `rotations` to be a Rotation, got "
                            f"{type(rotations).__name__}.")
        if rotations.single or len(rotations) == 1:
            raise ValueError("Slerp.init expects `rotations` to be a sequence of at least 2 "
                             f"rotations, got quaternions of shape {rotations.quat.shape}.")
        times = jnp.asarray(times, dtype=rotations.quat.dtype)
        if times.ndim != 1:
            raise ValueError(f"Slerp.init expects 1-dimensional `times`, got shape "
                             f"{times.shape}.")
        if times.shape[0] != len(rotations):
            raise ValueError(f"Slerp.init expects one time per rotation, got {times.shape[0]} "
                             f"times and {len(rotations)} rotations.")
        starts, ends = rotations[:-1], rotations[1:]
        return cls(times=times, timedelta=jnp.diff(times), rotations=starts,
                   rotvecs=(starts.inv() * ends).as_rotvec())

    def __call__(self, times: Any) -> Rotation:
        """The interpolated rotations at ``times`` (a scalar gives a single rotation, a
        1-D array a sequence)."""
        times = jnp.asarray(times, dtype=self.times.dtype)
        if times.ndim > 1:
            raise ValueError(f"Slerp expects `times` of at most 1 dimension, got shape "
                             f"{times.shape}.")
        t = jnp.atleast_1d(times)
        interval = jnp.maximum(jnp.searchsorted(self.times, t) - 1, 0)
        alpha = (t - self.times[interval]) / self.timedelta[interval]
        step = Rotation.from_rotvec(self.rotvecs[interval] * alpha[:, None])
        result = self.rotations[interval] * step
        return result[0] if times.ndim == 0 else result

