"""``import fungrad`` does not load ml_dtypes (most of its import time); bfloat16 works
once it turns up, whichever way it arrives. Each case runs in a fresh interpreter, since
this test process has long loaded ml_dtypes."""
from __future__ import annotations

import subprocess
import sys

import pytest

_PRELUDE = """
import sys
import numpy as np
import fungrad, fungrad.numpy as jnp
from fungrad import lax
assert "ml_dtypes" not in sys.modules, "import fungrad loaded ml_dtypes"
assert float(jnp.sum(jnp.ones(3) * 2)) == 6.0 and "ml_dtypes" not in sys.modules
"""

# Each snippet brings bfloat16 in its own way, then runs ops whose rules treat it specially
# (accepted dtypes, widening to float32, promotion) and compares with float32 arithmetic.
_CASES = {
    "dtype name": "x = jnp.ones((2, 3), 'bfloat16')",
    "fungrad.numpy.bfloat16": "x = jnp.ones((2, 3), jnp.bfloat16)",
    "a user's ml_dtypes array": "import ml_dtypes\n"
                                "x = jnp.asarray(np.ones((2, 3), ml_dtypes.bfloat16))",
}
_CHECKS = """
assert x.dtype.name == "bfloat16", x.dtype
y = x * 3.0 + 1
assert y.dtype == x.dtype
assert jnp.promote_types(x.dtype, jnp.float16) == np.float32
assert float(jnp.sum(y)) == 24.0 and jnp.sum(y).dtype == x.dtype
assert float(jnp.cumsum(y, axis=1)[0, -1]) == 12.0
assert (x @ y.T).dtype == x.dtype and float((x @ y.T)[0, 0]) == 12.0
assert abs(float(jnp.exp(x)[0, 0]) - 2.71875) < 1e-6
assert float(jnp.finfo(x.dtype).eps) == 2.0 ** -7
assert float(fungrad.grad(lambda v: jnp.sum(v * v).astype(np.float32))(x)[0, 0]) == 2.0
"""


@pytest.mark.parametrize("case", sorted(_CASES))
def test_bfloat16_after_a_lazy_import(case):
    code = _PRELUDE + _CASES[case] + _CHECKS
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
