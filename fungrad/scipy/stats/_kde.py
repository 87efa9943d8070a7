"""``gaussian_kde`` (``jax.scipy.stats.gaussian_kde``): a Gaussian kernel density estimate,
as SciPy's, held as a pytree of arrays so that it can be built and evaluated inside ``jit``
and differentiated in its data.

The density at ``x`` is ``sum_i w_i N(x; x_i, H)`` with the bandwidth matrix ``H`` the
weighted covariance of the data times ``factor**2`` (Scott's ``neff**(-1/(d+4))`` by
default). It is evaluated in whitened coordinates: with ``L`` the Cholesky factor of
``H^-1``, ``N(x; x_i, H) = det(L) (2 pi)^(-d/2) exp(-|L^T (x - x_i)|^2 / 2)``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

import fungrad.numpy as jnp
from fungrad import random
from fungrad.numpy._util import ensure_arraylike, promote_dtypes_inexact
from fungrad.scipy import linalg, special
from fungrad.transforms.api import vmap
from fungrad.tree import register_pytree_node_class

_FIELDS = ("neff", "dataset", "weights", "covariance", "inv_cov")


def _weighted_cov(x: Any, w: Any) -> Any:
    """The unbiased covariance of the columns of ``x`` (``(d, n)``) under weights ``w``
    summing to one (``np.cov(x, aweights=w)``)."""
    centred = x - jnp.sum(x * w, axis=1, keepdims=True)
    return (centred * w) @ centred.T / (1 - jnp.sum(w * w))


@register_pytree_node_class
@dataclasses.dataclass(frozen=True, init=False)
class gaussian_kde:  # noqa: N801 - SciPy's and JAX's name
    """A Gaussian kernel density estimate of ``dataset`` (``(n,)``, or ``(d, n)`` for ``d``
    dimensions), optionally weighted by ``weights`` (``(n,)``).

    ``bw_method`` sets the bandwidth factor: ``"scott"`` (the default), ``"silverman"``, a
    scalar, or a callable of the estimate. Attributes: ``dataset``, ``weights`` (summing to
    one), ``neff`` (the effective sample size), ``covariance`` (the kernel's) and
    ``inv_cov``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.stats import gaussian_kde
        >>> kde = gaussian_kde(jnp.array([-1.0, 0.0, 0.5, 2.0]))
        >>> kde.pdf(jnp.array([0.0, 5.0])).round(4)
        Array([0.2685, 0.0007], dtype=float32)
    """
    neff: Any
    dataset: Any
    weights: Any
    covariance: Any
    inv_cov: Any

    def __init__(self, dataset: Any, bw_method: str | float | Callable | None = None,
                 weights: Any = None) -> None:
        dataset = jnp.atleast_2d(ensure_arraylike("gaussian_kde", dataset))
        if jnp.issubdtype(dataset.dtype, np.complexfloating):
            raise NotImplementedError("gaussian_kde does not support complex data")
        if not dataset.size > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        d, n = dataset.shape
        if weights is not None:
            dataset, weights = promote_dtypes_inexact(
                dataset, ensure_arraylike("gaussian_kde", weights))
            weights = jnp.atleast_1d(weights)
            weights = weights / jnp.sum(weights)
            if weights.ndim != 1:
                raise ValueError("`weights` input should be one-dimensional.")
            if len(weights) != n:
                raise ValueError("`weights` input should be of length n")
        else:
            dataset, = promote_dtypes_inexact(dataset)
            weights = jnp.full(n, 1.0 / n, dtype=dataset.dtype)
        self._set(dataset=dataset, weights=weights, neff=1 / jnp.sum(weights ** 2))

        bw_method = "scott" if bw_method is None else bw_method
        if isinstance(bw_method, str) and bw_method == "scott":
            factor = jnp.power(self.neff, -1. / (d + 4))
        elif isinstance(bw_method, str) and bw_method == "silverman":
            factor = jnp.power(self.neff * (d + 2) / 4.0, -1. / (d + 4))
        elif not isinstance(bw_method, str) and jnp.isscalar(bw_method):
            factor = bw_method
        elif callable(bw_method):
            factor = bw_method(self)
        else:
            raise ValueError(
                "`bw_method` should be 'scott', 'silverman', a scalar, or a callable.")
        data_covariance = jnp.atleast_2d(_weighted_cov(dataset, weights))
        self._set(covariance=data_covariance * factor ** 2,
                  inv_cov=jnp.linalg.inv(data_covariance) / factor ** 2)

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():  # frozen: set once, while building
            object.__setattr__(self, name, value)

    def tree_flatten(self) -> tuple[tuple, None]:
        """The five arrays as children, no static data."""
        return tuple(getattr(self, f) for f in _FIELDS), None

    @classmethod
    def tree_unflatten(cls, aux_data: None, children: Any) -> "gaussian_kde":
        """An estimate holding ``children`` (``tree_flatten``'s order), not recomputed."""
        kde = cls.__new__(cls)
        kde._set(**dict(zip(_FIELDS, children)))
        return kde

    @property
    def d(self) -> int:
        """The number of dimensions."""
        return self.dataset.shape[0]

    @property
    def n(self) -> int:
        """The number of data points."""
        return self.dataset.shape[1]

    def evaluate(self, points: Any) -> Any:
        """The density at ``points`` (``(d, m)``, or ``(m,)`` when ``d`` is 1)."""
        points = self._reshape_points(ensure_arraylike("evaluate", points))
        return _kernel_sum(False, self.dataset.T, self.weights, points.T, self.inv_cov)

    def __call__(self, points: Any) -> Any:
        """``evaluate``."""
        return self.evaluate(points)

    def pdf(self, x: Any) -> Any:
        """The density at ``x`` (``evaluate``)."""
        return self.evaluate(x)

    def logpdf(self, x: Any) -> Any:
        """The log-density at ``x``, summed in log space (``logsumexp``)."""
        x = self._reshape_points(ensure_arraylike("logpdf", x))
        return _kernel_sum(True, self.dataset.T, self.weights, x.T, self.inv_cov)

    def integrate_gaussian(self, mean: Any, cov: Any) -> Any:
        """The integral of the density times the Gaussian density ``N(mean, cov)``."""
        mean = jnp.atleast_1d(jnp.squeeze(mean))
        cov = jnp.atleast_2d(cov)
        if mean.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        chol, norm = self._sum_factor(cov)
        return _convolve(chol, norm, self.dataset, self.weights, mean)

    def integrate_box_1d(self, low: Any, high: Any) -> Any:
        """The probability of ``[low, high]`` (one dimension only; scalar limits)."""
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        if np.ndim(low) != 0 or np.ndim(high) != 0:
            raise ValueError("the limits of integration in integrate_box_1d must be scalars")
        sigma = jnp.squeeze(jnp.sqrt(self.covariance))
        low = jnp.squeeze((low - self.dataset) / sigma)
        high = jnp.squeeze((high - self.dataset) / sigma)
        return jnp.sum(self.weights * (special.ndtr(high) - special.ndtr(low)))

    def integrate_kde(self, other: "gaussian_kde") -> Any:
        """The integral of the product of this density and ``other``'s."""
        if other.d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        chol, norm = self._sum_factor(other.covariance)
        small, large = (self, other) if self.n < other.n else (other, self)
        per_point = vmap(lambda m: _convolve(chol, norm, large.dataset, large.weights, m),
                         in_axes=1)(small.dataset)
        return jnp.sum(per_point * small.weights)

    def resample(self, key: Any, shape: tuple[int, ...] = ()) -> Any:
        """Draws from the estimate, of shape ``(d,) + shape``: a data point picked by weight
        plus kernel noise (the same draws as JAX's for the same ``key``; for a ``shape`` of
        two or more dimensions, where JAX 0.10 fails to broadcast its transposed noise, the
        draws of ``shape=(prod(shape),)`` reshaped)."""
        index_key, noise_key = random.split(key)
        index = random.choice(index_key, self.n, shape=shape, p=self.weights)
        noise = random.multivariate_normal(noise_key, jnp.zeros(self.d, self.covariance.dtype),
                                           self.covariance, shape=shape,
                                           dtype=self.dataset.dtype)
        return self.dataset[:, index] + jnp.moveaxis(noise, -1, 0)

    def integrate_box(self, low_bounds: Any, high_bounds: Any, maxpts: Any = None) -> Any:
        """Not implemented (as in JAX): use ``integrate_box_1d``."""
        raise NotImplementedError(
            "only 1D box integrations are supported; use `integrate_box_1d`")

    def set_bandwidth(self, bw_method: Any = None) -> None:
        """Not implemented (as in JAX): the estimate is immutable; build a new one."""
        raise NotImplementedError("dynamically changing the bandwidth method is not supported")

    def _sum_factor(self, cov: Any) -> tuple[tuple, Any]:
        """The Cholesky factor of ``covariance + cov`` and the normalisation of its Gaussian."""
        chol = linalg.cho_factor(self.covariance + cov)
        return chol, 1.0 / (jnp.sqrt(2 * np.pi) ** self.d * jnp.prod(jnp.diag(chol[0])))

    def _reshape_points(self, points: Any) -> Any:
        if jnp.issubdtype(points.dtype, np.complexfloating):
            raise NotImplementedError("gaussian_kde does not support complex coordinates")
        points = jnp.atleast_2d(points)
        d, m = points.shape
        if d != self.d:
            if d == 1 and m == self.d:
                return jnp.reshape(points, (self.d, 1))
            raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        return points


def _convolve(chol: tuple, norm: Any, target: Any, weights: Any, mean: Any) -> Any:
    """``norm * sum_i w_i exp(-(x_i - mean)^T S^-1 (x_i - mean) / 2)``, ``S`` given by its
    Cholesky factor ``chol``."""
    diff = target - mean[:, None]
    arg = 0.5 * jnp.sum(diff * linalg.cho_solve(chol, diff), axis=0)
    return norm * jnp.sum(jnp.exp(-arg) * weights)


def _kernel_sum(in_log: bool, points: Any, weights: Any, xi: Any, precision: Any) -> Any:
    """For each row of ``xi``, ``sum_i w_i N(x; points_i, precision^-1)`` (or its log)."""
    points, weights, xi, precision = promote_dtypes_inexact(points, weights, xi, precision)
    d = points.shape[1]
    if xi.shape[1] != d:
        raise ValueError("points and xi must have same trailing dim")
    if precision.shape != (d, d):
        raise ValueError("precision matrix must match data dims")
    whitening = linalg.cholesky(precision, lower=True)
    points, xi = jnp.dot(points, whitening), jnp.dot(xi, whitening)
    log_norm = jnp.sum(jnp.log(jnp.diag(whitening))) - 0.5 * d * jnp.log(2 * np.pi)

    def at(x: Any) -> Any:
        log_kernel = log_norm - 0.5 * jnp.sum(jnp.square(points - x), axis=1)
        if in_log:
            return special.logsumexp(jnp.log(weights) + log_kernel)
        return jnp.sum(weights * jnp.exp(log_kernel))
    return vmap(at)(xi)
