import os
import zlib

import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

# Fuzz tests draw the same examples on every run and machine, whatever a local example
# database holds, so that a failure anywhere reproduces everywhere.
settings.register_profile("reproducible", derandomize=True, database=None)
settings.load_profile("reproducible")


@pytest.fixture(autouse=True)
def _data_independent_of_test_order(request):
    """Reseed the test module's ``RNG`` from the test's name before each test.

    Tests draw their inputs from a module-level generator. Without this, a test's data
    would depend on the tests that ran before it in the same process (their order, a
    ``-k`` selection, how pytest-xdist shared them out), so a failure could change from
    run to run and not reproduce when the test runs alone. crc32, not ``hash()``: string
    hashes change from process to process."""
    rng = getattr(request.module, "RNG", None)
    if isinstance(rng, np.random.Generator):
        seed = zlib.crc32(f"{request.node.path.name}::{request.node.name}".encode())
        rng.bit_generator.state = type(rng.bit_generator)(seed).state
