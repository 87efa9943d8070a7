"""fungrad: a JAX-style functional deep learning library on NumPy (and CuPy).

Pure functions over pytrees of immutable arrays are traced into a small IR;
``grad``, ``vmap``, ``jit`` and friends are interpreters over primitives and
compose in any order.
"""
from fungrad._core import eval as _eval  # noqa: F401  (installs the eager trace)
from fungrad._core.array import Array, device_put
from fungrad._core.core import ClosedJaxpr, Jaxpr, ShapedArray
from fungrad.backends import devices
from fungrad.config import config
from fungrad import tree, lax, numpy  # noqa: E402
from fungrad import tree_util  # noqa: E402
from fungrad.transforms.api import (ShapeDtypeStruct, eval_shape, grad, hessian, jacfwd, jacrev,
                                    jvp, linearize, make_jaxpr, value_and_grad, vjp, vmap)
from fungrad.transforms.custom_derivatives import custom_jvp, custom_vjp
from fungrad.transforms.checkpoint import checkpoint, checkpoint_policies, remat
from fungrad.transforms.jit import disable_jit, jit
from fungrad.lax.ad_util import stop_gradient
from fungrad import test_util  # noqa: E402
from fungrad import nn, optim, scipy, train  # noqa: E402
from fungrad import debug  # noqa: E402
from fungrad import random  # noqa: E402

__version__ = "0.1.0"
