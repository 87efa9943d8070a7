"""fungrad.random's counting samplers (poisson, binomial, multinomial, geometric) against
jax.random: the same bits for the same key on every code path (Knuth and rejection, inversion
and BTRS, p above and below 1/2, invalid parameters), jit and vmap, and the distributions
against scipy by chi-square tests."""
import jax
import numpy as np
import pytest
import scipy.stats
from test_random_distributions import _same_bits

import fungrad
import fungrad.random as fr
from fungrad.random._discrete import _lgamma

P3 = np.array([0.2, 0.3, 0.5], np.float32)
LAMS = np.array([0., 0.5, 3., 9.9, np.nan, 10., 25.], np.float32)
EDGE_P = np.array([0.3, 0.7, np.nan, -0.1, 0.5, 1.0, 0.4], np.float32)
EDGE_N = np.array([20., 20., 20., 20., -3., 20., np.inf], np.float32)

# name -> draw(module, key, shape); the same call on jax.random and fungrad.random.
DRAWS = {
    "geometric": lambda m, k, s: m.geometric(k, 0.3, s),
    "geometric_array": lambda m, k, s: m.geometric(k, np.full(s, 0.01, np.float32), s, np.int16),
    "poisson_knuth": lambda m, k, s: m.poisson(k, 3.0, s),
    "poisson_rejection": lambda m, k, s: m.poisson(
        k, np.resize(np.array([10., 40., 1e3], np.float32), s), s),
    "poisson_edges": lambda m, k, s: m.poisson(k, np.resize(LAMS, s), s),
    "binomial_inversion": lambda m, k, s: m.binomial(k, 20, 0.3, s),
    "binomial_btrs": lambda m, k, s: m.binomial(k, 200, 0.6, s),
    "binomial_edges": lambda m, k, s: m.binomial(k, np.resize(EDGE_N, s), np.resize(EDGE_P, s), s),
    "multinomial": lambda m, k, s: m.multinomial(k, 50., P3, shape=s + (3,)),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("seed, shape", [(0, (10_000,)), (2 ** 40 + 3, (3, 5))])
def test_bits_equal_jax(name, seed, shape):
    draw = DRAWS[name]
    _same_bits(draw(fr, fr.PRNGKey(seed), shape), draw(jax.random, jax.random.PRNGKey(seed), shape))


def test_lgamma_is_xlas_on_counts():
    # Poisson's rejection test compares against lgamma(k + 1): XLA's float32 Lanczos sum.
    x = np.arange(1, 100_001, dtype=np.float32)
    _same_bits(_lgamma(x), jax.jit(jax.lax.lgamma)(x))


@pytest.mark.parametrize("name", ["poisson_knuth", "binomial_btrs", "multinomial"])
def test_jit_and_vmap_equal_jax(name):
    draw = DRAWS[name]
    _same_bits(fungrad.jit(lambda k: draw(fr, k, (4,)))(fr.key(11)),
               draw(jax.random, jax.random.key(11), (4,)))
    batched = fungrad.vmap(lambda k: draw(fr, k, (4,)))(fr.split(fr.key(5), 3))
    _same_bits(batched, jax.vmap(lambda k: draw(jax.random, k, (4,)))(
        jax.random.split(jax.random.key(5), 3)))


def _chisquare_pvalue(x, dist, support):
    """Chi-square goodness of fit of integer draws ``x`` on ``support`` (tails pooled)."""
    x = np.asarray(x, np.float64).ravel()
    lo, hi = support[0], support[-1]
    observed = np.array([(x <= lo).sum()] + [(x == v).sum() for v in support[1:-1]]
                        + [(x >= hi).sum()])
    probs = dist.pmf(np.asarray(support[1:-1]))
    expected = np.concatenate([[dist.cdf(lo)], probs, [1 - dist.cdf(lo) - probs.sum()]]) * x.size
    return scipy.stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("sample, dist, support", [
    (lambda k: fr.poisson(k, 3.0, (20_000,)), scipy.stats.poisson(3.0), range(10)),
    (lambda k: fr.poisson(k, 40.0, (20_000,)), scipy.stats.poisson(40.0), range(28, 54)),
    (lambda k: fr.geometric(k, 0.3, (20_000,)), scipy.stats.geom(0.3), range(1, 12)),
    (lambda k: fr.binomial(k, 20, 0.3, (20_000,)), scipy.stats.binom(20, 0.3), range(2, 11)),
    (lambda k: fr.binomial(k, 200, 0.6, (20_000,)), scipy.stats.binom(200, 0.6), range(106, 135)),
    (lambda k: fr.multinomial(k, 50., P3, shape=(20_000, 3))[:, 1], scipy.stats.binom(50, 0.3),
     range(8, 23)),
])
def test_chisquare_against_scipy(sample, dist, support):
    assert _chisquare_pvalue(sample(fr.key(9)), dist, list(support)) > 1e-3


def test_multinomial_counts_sum_to_n():
    counts = np.asarray(fr.multinomial(fr.key(2), np.array([5., 100.], np.float32), P3,
                                       shape=(2, 3)))
    np.testing.assert_array_equal(counts.sum(-1), [5., 100.])


@pytest.mark.parametrize("call", [
    lambda: fr.poisson(fr.key(0), 3.0, (2,), np.float32),
    lambda: fr.geometric(fr.key(0), 0.5, (2,), np.float32),
    lambda: fr.binomial(fr.key(0), 5, 0.5, (2,), np.int32),
    lambda: fr.geometric(fr.key(0), np.ones(3) / 2, (2,)),
    lambda: fr.multinomial(fr.key(0), 5., np.float32(1.)),
    lambda: fr.multinomial(fr.key(0), np.ones(4), P3, shape=(2, 3)),
])
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()
