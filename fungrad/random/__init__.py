"""``fungrad.random``: explicit-key pseudo-random numbers, bit-exact with ``jax.random``.

There is no global state: every function takes a key, and the same key gives
the same numbers. Make a key with ``key(seed)`` (typed) or ``PRNGKey(seed)``
(raw ``uint32[2]``), derive new keys with ``split`` or ``fold_in``, and never
reuse a key for two draws::

    key = fungrad.random.key(0)
    key, sub = fungrad.random.split(key)
    x = fungrad.random.normal(sub, (3, 4))

The generator is Threefry-2x32 (``threefry2x32_p``, the one primitive here) in
JAX's default, partitionable counter scheme, so keys and draws equal JAX's.

The samplers that take ``out_sharding`` in ``jax.random`` take it here too. JAX lays
the draws out over a mesh with it; fungrad puts each array whole on one device, so here it
names that device (a ``Device``, ``"cpu"``/``"gpu:0"`` or a ``Sharding``, as
``device_put`` takes) and the draws are committed there; the draws themselves do not
change, and ``None`` (the default) leaves them where the computation runs. Anything else
(a bare ``PartitionSpec``, a mesh axis name) is an error naming the sampler.
"""
from fungrad._core.namespace import public_dir
from fungrad.random._discrete import binomial, geometric, multinomial, poisson
from fungrad.random._distributions import (cauchy, double_sided_maxwell, logistic, lognormal,
                                           maxwell, multivariate_normal, orthogonal, pareto,
                                           rademacher, rayleigh, triangular, wald, weibull_min)
from fungrad.random._gamma import (ball, beta, chisquare, dirichlet, f, gamma, generalized_normal,
                                   loggamma, t)
from fungrad.random._keys import (PRNGKeyArray, PRNGKey, clone, fold_in, key, key_data, key_dtype,
                                  key_impl, split, wrap_key_data)
from fungrad.random._samplers import (bernoulli, bits, categorical, choice, exponential, gumbel,
                                      laplace, normal, permutation, randint, truncated_normal,
                                      uniform)
from fungrad.random._threefry import threefry2x32, threefry2x32_p

__all__ = ["PRNGKeyArray", "PRNGKey", "key", "key_data", "key_impl", "key_dtype", "wrap_key_data",
           "split", "fold_in", "clone", "bits", "uniform", "normal", "truncated_normal",
           "bernoulli", "randint", "categorical", "gumbel", "permutation", "choice", "exponential",
           "laplace", "threefry2x32", "threefry2x32_p", "cauchy", "logistic", "lognormal",
           "pareto", "weibull_min", "rayleigh", "wald", "triangular", "rademacher", "maxwell",
           "double_sided_maxwell", "orthogonal", "multivariate_normal", "gamma", "loggamma",
           "beta", "dirichlet", "chisquare", "f", "t", "generalized_normal", "ball", "poisson",
           "binomial", "multinomial", "geometric"]
__dir__ = public_dir(__all__)
