"""``optax.experimental``: optax's experimental modules, under the same names.

``aggregating`` turns per-example gradients into one update: it averages them,
accumulates the averages over several microbatches, and keeps running statistics (mean and
variance of the gradients over the examples) beside an ordinary optimiser.
"""
from fungrad.optim.experimental import aggregating

__all__ = ["aggregating"]
