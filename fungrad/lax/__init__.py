"""``fungrad.lax``: the primitives under their ``jax.lax`` names.

One module per family; each lists its public names in ``__all__``:
elementwise (arithmetic, comparisons, select, complex), transcendental,
special (erf, lgamma, ...), special_series (zeta, igamma, betainc, bessel_i0e, ..., mulhi),
bitwise, shapes, slicing (slices, gather/scatter, padding,
concatenation), reductions, cumulative, sorting, dot, conv, windowed (reduce_window),
control_flow, parallel (named-axis collectives), ad_util (stop_gradient), fft,
misc (reduce_precision, optimization_barrier, tokens, stack/unstack/tile),
generic_reduce (lax.reduce), conv_patches (image patches, locally connected convolutions,
shape helpers), ragged (ragged_dot: one matmul per group of rows), rng (XLA's random bit
generators), scaled (scaled_dot: a dot of block-scaled operands).
"""
import importlib

from fungrad._core.namespace import public_dir
from fungrad.lax.elementwise import *  # noqa: F401,F403
from fungrad.lax.transcendental import *  # noqa: F401,F403
from fungrad.lax.special import *  # noqa: F401,F403
from fungrad.lax.special_series import *  # noqa: F401,F403
from fungrad.lax.bitwise import *  # noqa: F401,F403
from fungrad.lax.shapes import *  # noqa: F401,F403
from fungrad.lax.slicing import *  # noqa: F401,F403
from fungrad.lax.reductions import *  # noqa: F401,F403
from fungrad.lax.cumulative import *  # noqa: F401,F403
from fungrad.lax.sorting import *  # noqa: F401,F403
from fungrad.lax.dot import *  # noqa: F401,F403
from fungrad.lax.conv import *  # noqa: F401,F403
from fungrad.lax.windowed import *  # noqa: F401,F403
from fungrad.lax.control_flow import *  # noqa: F401,F403
from fungrad.lax.parallel import *  # noqa: F401,F403
from fungrad.lax.ad_util import *  # noqa: F401,F403
from fungrad.lax.fft import *  # noqa: F401,F403
from fungrad.lax.misc import *  # noqa: F401,F403
from fungrad.lax.generic_reduce import *  # noqa: F401,F403
from fungrad.lax.conv_patches import *  # noqa: F401,F403
from fungrad.lax.ragged import *  # noqa: F401,F403
from fungrad.lax.rng import *  # noqa: F401,F403
from fungrad.lax.scaled import *  # noqa: F401,F403
from fungrad.lax import linalg  # noqa: F401,E402

# The families by module name: ``fungrad.lax.dot``, ``conv`` and ``fft`` are the functions.
_FAMILIES = ("elementwise", "transcendental", "special", "special_series", "bitwise", "shapes",
             "slicing", "reductions", "cumulative", "sorting", "dot", "conv", "windowed",
             "control_flow", "parallel", "ad_util", "fft", "misc", "generic_reduce",
             "conv_patches", "ragged", "rng", "scaled")
__all__ = [name for family in _FAMILIES
           for name in importlib.import_module(f"{__name__}.{family}").__all__] + ["linalg"]
__dir__ = public_dir(__all__)
