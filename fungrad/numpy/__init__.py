"""``fungrad.numpy``: the ``jax.numpy`` API, written only with ``fungrad.lax``."""
from fungrad.numpy._dtypes import *  # noqa: F401,F403
from fungrad.numpy._creation import *  # noqa: F401,F403
from fungrad.numpy._ufuncs import *  # noqa: F401,F403
from fungrad.numpy._ufuncs_math import *  # noqa: F401,F403
from fungrad.numpy._reductions import *  # noqa: F401,F403
from fungrad.numpy._shape import *  # noqa: F401,F403
from fungrad.numpy._joining import *  # noqa: F401,F403
from fungrad.numpy._indexing import *  # noqa: F401,F403
from fungrad.numpy._indexing import _getitem, _IndexUpdateHelper  # noqa: F401
