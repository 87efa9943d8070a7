"""``fungrad.scipy.stats`` (``jax.scipy.stats``): one module per distribution with the
log-density/mass, density/mass and, where JAX has them, CDF, survival and quantile
functions, written with ``fungrad.numpy`` and ``fungrad.scipy.special`` so that they
differentiate, batch and compile like any other composite; and the summary statistics
``mode``, ``rankdata``, ``sem`` and the kernel density estimate ``gaussian_kde``."""
from fungrad._core.namespace import public_dir
from fungrad.scipy.stats import (  # noqa: F401
    bernoulli,
    beta,
    betabinom,
    binom,
    cauchy,
    chi2,
    dirichlet,
    expon,
    gamma,
    gennorm,
    geom,
    gumbel_l,
    gumbel_r,
    laplace,
    logistic,
    multinomial,
    multivariate_normal,
    nbinom,
    norm,
    pareto,
    poisson,
    t,
    truncnorm,
    uniform,
    vonmises,
    wrapcauchy,
)
from fungrad.scipy.stats._core import mode, rankdata, sem
from fungrad.scipy.stats._kde import gaussian_kde

__all__ = ["bernoulli", "beta", "betabinom", "binom", "cauchy", "chi2", "dirichlet", "expon",
           "gamma", "gennorm", "geom", "gumbel_l", "gumbel_r", "laplace", "logistic",
           "multinomial", "multivariate_normal", "nbinom", "norm", "pareto", "poisson", "t",
           "truncnorm", "uniform", "vonmises", "wrapcauchy", "gaussian_kde", "mode", "rankdata",
           "sem"]
__dir__ = public_dir(__all__)
