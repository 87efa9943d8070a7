"""Checks that need several devices, run in a child process.

The device list is fixed when first used, and this test process has one device (jax's
``XLA_FLAGS`` is set in ``conftest.py``). A test module that needs more defines its checks as
``check_*`` functions, runs them in a child started with ``FUNGRAD_NUM_CPU_DEVICES`` and
XLA's flag set alike (so jax has the same devices to compare with), and asserts each one's
outcome in a test of its own:

    CHECKS = checks(globals())
    results = child_fixture(__file__, CHECKS, devices=4)

    @pytest.mark.parametrize("name", sorted(CHECKS))
    def test_four_devices(results, name):
        assert results[name] == "ok", results[name]

    if __name__ == "__main__":
        child_main(CHECKS)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from typing import Callable

import pytest


def error_of(fn: Callable, *args: object) -> tuple[str, str]:
    """The class name and message of what ``fn(*args)`` raises (an AssertionError if
    nothing is raised): checks compare them with jax's."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return type(e).__name__, str(e)
    raise AssertionError("no error raised")


def checks(namespace: dict) -> dict[str, Callable[[], None]]:
    """The ``check_*`` functions of a module's namespace."""
    return {name: fn for name, fn in namespace.items() if name.startswith("check_")}


def run_child(args: list[str], devices: int, extra_env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """``python *args`` from the repository's root with ``devices`` CPU devices for fungrad
    and jax alike (and ``extra_env``)."""
    env = {**os.environ, "FUNGRAD_NUM_CPU_DEVICES": str(devices),
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu", "FUNGRAD_PLATFORMS": "cpu", "OPENBLAS_NUM_THREADS": "1",
           **(extra_env or {})}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)))


def child_fixture(test_file: str, checks_: dict, devices: int) -> Callable:
    """A module-scoped fixture: ``test_file --child`` run with ``devices`` CPU devices, and
    its outcome per check (``"ok"`` or the traceback)."""
    @pytest.fixture(scope="module")
    def results() -> dict[str, str]:
        proc = run_child([test_file, "--child"], devices)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert sorted(out) == sorted(checks_), sorted(out)
        return out
    return results


def child_main(checks_: dict) -> None:
    """In the child: run every check once and print the outcomes as one JSON line."""
    if sys.argv[1:] != ["--child"]:
        return
    results = {}
    for name, fn in checks_.items():
        try:
            fn()
            results[name] = "ok"
        except Exception:  # noqa: BLE001 - reported to the parent test
            results[name] = traceback.format_exc()
    print(json.dumps(results))
