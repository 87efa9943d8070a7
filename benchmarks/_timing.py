"""Timing helpers shared by the benchmark scripts.

* ``best_us``: best-of-N wall time of one function, in microseconds.
* ``interleaved``: several functions timed in alternating rounds, so that load
  from other processes falls on all of them alike; reports min and median.
* ``load_average``: the 1-minute load average, printed next to every figure
  (on a 2-core machine figures taken above a load of about 1 are inflated).
* ``profile_executable``: per-equation timing of a ``fungrad.jit`` executable
  (each generated line timed, minimum over several calls).
* ``Worker`` / ``serve`` / ``interleaved_workers``: each library in a process of its own
  (no shared allocator, thread pools or caches), driven in alternating rounds, timed by
  wall clock and by the process's CPU time (robust on a machine busy with other work).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Callable, Sequence


def best_us(fn: Callable[[], Any], number: int = 1000, repeat: int = 5,
            sync: Callable | None = None) -> float:
    """Best average time of ``fn()`` over ``repeat`` runs of ``number`` calls, in µs."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn()
        if sync is not None:
            sync(out)
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def row(name: str, **figures: float) -> str:
    return f"{name:<28}" + "".join(f"{k:>14}={v:9.2f}" for k, v in figures.items())


def load_average() -> str:
    """The 1, 5 and 15-minute load averages as text (``?`` where unavailable)."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int = 5, number: int = 5
                ) -> dict[str, tuple[float, float]]:
    """``{name: (min, median)}`` seconds per call; each round times ``number`` calls of
    every function in turn, so a burst of outside load hits all of them."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(number):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: (min(s), sorted(s)[len(s) // 2]) for name, s in samples.items()}


def time_calls(fn: Callable[[], Any], number: int) -> dict[str, list[float]]:
    """Wall-clock and process CPU seconds of each of ``number`` calls of ``fn``."""
    wall, cpu = [], []
    for _ in range(number):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return {"wall": wall, "cpu": cpu}


def serve(handle: Callable[[dict], dict]) -> None:
    """The child side of a ``Worker``: answer each JSON request read from stdin with
    ``handle(request)`` as one JSON line on stdout, until stdin closes."""
    for line in sys.stdin:
        print(json.dumps(handle(json.loads(line))), flush=True)


class Worker:
    """A benchmark in a child process (``argv``), asked JSON requests one at a time."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def ask(self, **request: Any) -> dict:
        """Send ``request`` and wait for the answer."""
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.proc.args} exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def interleaved_workers(workers: dict[str, Worker], rounds: int, number: int
                        ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{name: {"wall": (min, median), "cpu": (min, median)}}`` seconds per call: each round
    asks every worker in turn for ``number`` timed calls (``{"op": "run", "number": n}``,
    answered by ``time_calls``'s dict)."""
    samples: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in workers}
    for _ in range(rounds):
        for name, worker in workers.items():
            answer = worker.ask(op="run", number=number)
            for kind in ("wall", "cpu"):
                samples[name][kind] += answer[kind]
    return {name: {kind: (min(s), sorted(s)[len(s) // 2]) for kind, s in by_kind.items()}
            for name, by_kind in samples.items()}


def profile_executable(exe: Any, make_args: Callable[[Any], Sequence[Any]], calls: int = 10,
                       top: int = 25) -> str:
    """Time every line of ``exe``'s generated code over ``calls`` calls (minimum per line).

    ``make_args(previous_outputs_or_None)`` returns the buffers of the next call (so a
    train step can feed its outputs back). Returns a report: time per primitive (the
    called function's name) and the ``top`` slowest lines.
    """
    lines = exe.source.splitlines()
    body, stmts = [lines[0], "    _t0 = _pc()"], []
    timed = True
    for line in lines[1:]:
        body.append(line)
        stmt = line.strip()
        timed = timed and stmt != "finally:"  # the cleanup after the return is not timed
        if timed and not stmt.startswith("return") and not stmt.endswith(":"):
            indent = line[:len(line) - len(line.lstrip())]
            body.append(f"{indent}_t1 = _pc(); _T[{len(stmts)}] = _t1 - _t0; _t0 = _t1")
            stmts.append(stmt)
    times = [0.0] * len(stmts)
    scope = dict(exe.fn.__globals__, _T=times, _pc=time.perf_counter)
    exec(compile("\n".join(body) + "\n", "<profile>", "exec"), scope)  # noqa: S102
    fn = scope[lines[0][4:lines[0].index("(")]]
    best, outs, totals = [float("inf")] * len(stmts), None, []
    for i in range(calls + 2):
        args = make_args(outs)
        t0 = time.perf_counter()
        outs = fn(*args)
        totals.append(time.perf_counter() - t0)
        if i >= 2:  # warm-up calls excluded
            best = [min(a, b) for a, b in zip(best, times)]
    per_prim, count = Counter(), Counter()
    for stmt, t in zip(stmts, best):
        m = re.match(r"del |[\w, ]+= (_[a-z_]+?)\d*\(", stmt)
        key = "del" if stmt.startswith("del ") else (m.group(1) if m else "view/other")
        per_prim[key] += t
        count[key] += 1
    report = [f"call: min {min(totals[2:]) * 1e3:.2f} ms; sum of per-line minima "
              f"{sum(best) * 1e3:.2f} ms over {len(stmts)} lines"]
    report += [f"  {k:<24}{t * 1e3:9.3f} ms {count[k]:5d} lines" for k, t in per_prim.most_common()]
    report.append(f"slowest {top} lines:")
    order = sorted(range(len(stmts)), key=lambda i: -best[i])[:top]
    report += [f"  {best[i] * 1e3:8.3f} ms  {stmts[i][:120]}" for i in order]
    return "\n".join(report)
