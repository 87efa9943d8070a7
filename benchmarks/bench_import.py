"""``import fungrad`` in fresh processes, with and without a bytecode cache, against ``import
numpy`` and ``import jax``.

Python compiles every module it imports from source unless a ``.pyc`` is cached. With
``PYTHONDONTWRITEBYTECODE=1`` set (as in some containers) and no cache written beforehand,
every ``import fungrad`` compiles its ~150 modules again; an installed package or a checkout
imported once before reads them from the cache. Both cases are timed here: the cache lives in
a temporary directory (``PYTHONPYCACHEPREFIX``), so the source tree is left untouched; "no
cache" reads the ``.pyc`` files installed packages ship with but writes none for the checkout.
Figures are the CPU time (user + system) of each child process, minimum and median over
``--rounds`` alternating rounds.

Run: python benchmarks/bench_import.py [--rounds 10]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

CASES = {"python": "pass", "numpy": "import numpy", "fungrad": "import fungrad",
         "jax": "import jax"}


def _cpu_seconds(code: str, env: dict) -> float:
    t0 = os.times()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    t1 = os.times()
    return (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import load_average
    with tempfile.TemporaryDirectory() as cache:
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = cache
        uncached = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
        uncached["PYTHONDONTWRITEBYTECODE"] = "1"  # installed packages keep their .pyc files
        for code in CASES.values():  # fill the cache
            _cpu_seconds(code, cached)
        envs = {"cached": cached, "no cache": uncached}
        times = {(name, mode): [] for name in CASES for mode in envs}
        for _ in range(args.rounds):
            for mode, env in envs.items():
                for name, code in CASES.items():
                    times[name, mode].append(_cpu_seconds(code, env))
    print(f"CPU seconds per fresh process, min / median of {args.rounds} (load {load_average()});"
          " os.times() resolution is 10 ms")
    for (name, mode), t in times.items():
        print(f"  {name:<8}{mode:<10}{min(t):7.3f}{sorted(t)[len(t) // 2]:7.3f}")


if __name__ == "__main__":
    main()
