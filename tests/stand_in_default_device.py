"""A pytest plugin running every test with the stand-in GPU of ``host_cupy`` as the default
device, so that any test module exercises the GPU path (an exploration tool, not part of
the suite):

    PYTHONPATH=tests python -m pytest -p stand_in_default_device tests/test_ode.py

Tests of the CPU's own behaviour fail under it by design: those that expect CPU devices,
memory plans, CPU fusion or threads in a compiled program's text, bit-exact agreement
between the CPU's per-operation rounding and a GPU kernel's single rounding of float16 and
bfloat16 chains, and the float8/int4 dtypes CuPy lacks. The failures left are GPU bugs
(``docs/gpu.md`` lists those found this way).
"""
import pytest

import fungrad
import host_cupy


@pytest.fixture(autouse=True)
def _on_the_stand_in_gpu(monkeypatch):
    gpu = host_cupy.install(monkeypatch)
    # float32 contractions, not the GPU's default TensorFloat-32, to compare with the CPU
    with fungrad.default_device(gpu), fungrad.default_matmul_precision("float32"):
        yield
    host_cupy.uninstall()
