"""``fungrad.numpy``: the ``jax.numpy`` API, written only with ``fungrad.lax``.

Modules by family: ``_dtypes`` (dtype names and queries), ``_creation``, ``_ufuncs``
(arithmetic, comparison, logical, bitwise), ``_ufuncs_math`` (transcendental, rounding,
classification), ``_float_bits`` (frexp, ldexp, spacing), ``_reductions``, ``_shape``,
``_padding``, ``_joining``, ``_indexing`` (``x[idx]``, ``x.at[idx]``, ``take``), ``_searching``,
``_sorting``, ``_linalg`` (products), ``_einsum``, ``_misc``, ``_quantiles``,
``_index_tricks``, ``_functional`` (vectorize and friends), ``_setops``, ``_polynomial``,
``_histograms``, ``_windows``, ``_signal`` (unwrap, trim_zeros), ``_bit_packing``,
``_io`` (arrays from buffers, functions and files; printing);
``linalg`` and ``fft`` are the ``jnp.linalg`` and ``jnp.fft`` submodules.
"""
import sys

from fungrad._core.namespace import public_dir
from fungrad.numpy._dtypes import *  # noqa: F401,F403
from fungrad.numpy._creation import *  # noqa: F401,F403
from fungrad.numpy._ufuncs import *  # noqa: F401,F403
from fungrad.numpy._ufuncs_math import *  # noqa: F401,F403
from fungrad.numpy._float_bits import *  # noqa: F401,F403
from fungrad.numpy._reductions import *  # noqa: F401,F403
from fungrad.numpy._shape import *  # noqa: F401,F403
from fungrad.numpy._padding import *  # noqa: F401,F403
from fungrad.numpy._joining import *  # noqa: F401,F403
from fungrad.numpy._indexing import *  # noqa: F401,F403
from fungrad.numpy._searching import *  # noqa: F401,F403
from fungrad.numpy._sorting import *  # noqa: F401,F403
from fungrad.numpy._linalg import *  # noqa: F401,F403
from fungrad.numpy._einsum import *  # noqa: F401,F403
from fungrad.numpy._misc import *  # noqa: F401,F403
from fungrad.numpy._quantiles import *  # noqa: F401,F403
from fungrad.numpy._index_tricks import *  # noqa: F401,F403
from fungrad.numpy._functional import *  # noqa: F401,F403
from fungrad.numpy._setops import *  # noqa: F401,F403
from fungrad.numpy._polynomial import *  # noqa: F401,F403
from fungrad.numpy._histograms import *  # noqa: F401,F403
from fungrad.numpy._windows import *  # noqa: F401,F403
from fungrad.numpy._signal import *  # noqa: F401,F403
from fungrad.numpy._bit_packing import *  # noqa: F401,F403
from fungrad.numpy._io import *  # noqa: F401,F403
from fungrad.numpy import (_bit_packing, _creation, _dtypes, _einsum, _float_bits, _functional,
                           _histograms, _index_tricks, _indexing, _io, _joining, _linalg, _misc,
                           _padding, _polynomial, _quantiles, _reductions, _searching, _setops,
                           _shape, _signal, _sorting, _ufuncs, _ufuncs_math, _windows, fft,
                           linalg)
from fungrad.numpy._indexing import _getitem, _IndexUpdateHelper  # noqa: F401
from fungrad.numpy._shape import _method_reshape, _method_transpose  # noqa: F401
from fungrad.numpy._misc import _view  # noqa: F401

from fungrad._core.array import Array as ndarray  # noqa: E402,F401  (jnp.ndarray is jax.Array)

bool = _dtypes.bool_  # noqa: A001  (jnp.bool is jnp.bool_)
newaxis = None
pi, e, inf, nan, euler_gamma = 3.141592653589793, 2.718281828459045, float("inf"), \
    float("nan"), 0.5772156649015329

from fungrad._core import array_methods as _array_methods  # noqa: E402
_array_methods.install(sys.modules[__name__])
# After install: Array's operators keep the plain functions; the public names become ufuncs.
from fungrad.numpy._ufunc_api import *  # noqa: E402,F401,F403
from fungrad.numpy import _ufunc_api  # noqa: E402

__all__ = [name for family in (_dtypes, _creation, _ufuncs, _ufuncs_math, _float_bits,
                               _reductions, _shape, _padding, _joining, _indexing, _searching,
                               _sorting, _linalg, _einsum, _misc, _quantiles, _index_tricks,
                               _functional,
                               _setops, _polynomial, _histograms, _windows, _signal,
                               _bit_packing, _io)
           for name in family.__all__]
__all__ += [*_dtypes.ML_DTYPE_NAMES, "dtype", "bool",  # noqa: F405 (__getattr__: ml_dtypes)
            "ndarray", "newaxis", "pi", "e", "inf", "nan", "euler_gamma",
            "fft", "linalg"]
__all__ += [name for name in _ufunc_api.__all__ if name not in __all__]
__dir__ = public_dir(__all__)


def __getattr__(name: str):
    """``bfloat16``, the small floats, the sub-byte integers and ``dtype`` (NumPy's, knowing
    their names) load ml_dtypes on first use (see ``fungrad._core.dtypes``)."""
    return getattr(_dtypes, name)
