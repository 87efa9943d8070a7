"""``import fungrad`` loads the core only: the libraries on top of it (``nn``, ``optim``,
``random``, ``scipy``, ...) and the optional numexpr load on first use, and then work as if
they had been imported eagerly. Each case runs in a fresh interpreter, since this test
process has long imported everything."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import fungrad

ROOT = pathlib.Path(fungrad.__file__).parent


def _run(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_import_fungrad_leaves_the_libraries_and_numexpr_unloaded():
    _run(f"""
import sys
import fungrad, fungrad.numpy as jnp
assert float(fungrad.jit(lambda x: jnp.sum(x * x))(jnp.ones(3))) == 3.0
loaded = sorted(n for n in {fungrad._LIBRARIES!r} if "fungrad." + n in sys.modules)
assert not loaded, f"import fungrad loaded {{loaded}}"
assert "numexpr" not in sys.modules, "import fungrad loaded numexpr"
""")


@pytest.mark.parametrize("access", [
    "fungrad.nn.relu(jnp.array([-1.0, 2.0]))",
    "fungrad.random.normal(fungrad.random.key(0), (2,))",
    "fungrad.scipy.special.logsumexp(jnp.ones(3))",
    "__import__('fungrad.optim').optim.adam(1e-3).init({'w': jnp.ones(2)})",
    "fungrad.image.resize(jnp.ones((2, 2)), (4, 4), 'linear')",
])
def test_a_library_loads_on_first_attribute_access(access):
    _run(f"""
import fungrad, fungrad.numpy as jnp
result = {access}
assert result is not None
""")


def test_from_import_and_dir_see_the_lazy_libraries():
    _run("""
import fungrad
from fungrad import optim, train
assert optim is fungrad.optim and train is fungrad.train
assert {"nn", "optim", "random", "scipy", "train"} <= set(dir(fungrad))
try:
    fungrad.no_such_library
except AttributeError as e:
    assert "no_such_library" in str(e), e
else:
    raise AssertionError("an unknown attribute did not raise")
""")


def test_every_lazy_library_is_a_public_subpackage():
    for name in fungrad._LIBRARIES:
        assert name in fungrad.__all__, name
        assert (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file(), name
