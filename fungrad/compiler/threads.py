"""The compiler's second thread: compiled code hands part of its work to one worker.

NumPy releases the GIL inside its loops, so a Python thread running ufuncs over large
arrays keeps a second core busy while the calling thread works on another part: parallel
tails (``parallel``: independent optimiser chains) run on the caller and this worker.

There is one worker. ``start`` hands it a task only when it is idle and returns None
otherwise, so work that meets more parallel work (an executable with a parallel tail
called from inside a component) runs on its own thread instead of waiting for a busy
worker: no deadlock, never more than two threads of ours running ufuncs.

Enabled with at least two CPUs this process may use (its affinity mask: ``taskset`` or a
container can leave it one); ``FUNGRAD_THREADS=1`` turns it off (read at import, for the
executables compiled afterwards).
"""
from __future__ import annotations

import os
import threading
from queue import SimpleQueue
from typing import Any, Callable

from fungrad._core.util import usable_cpus

ENABLED = os.environ.get("FUNGRAD_THREADS", "") != "1" and usable_cpus() >= 2


class Task:
    """A call running on the worker; ``wait()`` returns once it has finished (raising what
    it raised)."""
    __slots__ = ("args", "done", "error", "fn")

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args, self.error = fn, args, None
        self.done = threading.Lock()
        self.done.acquire()

    def wait(self) -> None:
        """Block until the task has finished; raise what it raised."""
        self.done.acquire()
        if self.error is not None:
            raise self.error


_idle = threading.Lock()           # held while the worker has a task
_tasks: SimpleQueue = SimpleQueue()
_worker: list[threading.Thread] = []


def start(fn: Callable, *args: Any) -> Task | None:
    """Run ``fn(*args)`` on the worker if it is idle (the caller must ``wait()`` on the
    returned task); None when it is busy, and the caller runs the work itself."""
    if not _idle.acquire(blocking=False):
        return None
    if not _worker:
        thread = threading.Thread(target=_serve, name="fungrad-worker", daemon=True)
        thread.start()
        _worker.append(thread)
    task = Task(fn, args)
    _tasks.put(task)
    return task


def _serve() -> None:
    while True:
        task = _tasks.get()
        try:
            task.fn(*task.args)
        except BaseException as error:  # handed to the waiting thread
            task.error = error
        finally:
            # Drop the task's references (its arguments may be buffers a caller donates
            # next: an extra reference would make them look shared and force a copy).
            task.fn = task.args = None
            done, task = task.done, None
            _idle.release()  # idle again before the waiter wakes, so it can start the next
            done.release()


def _forget_worker() -> None:
    """In a forked child the worker thread does not exist: start a new one when needed."""
    global _idle, _tasks
    _worker.clear()
    _idle, _tasks = threading.Lock(), SimpleQueue()


os.register_at_fork(after_in_child=_forget_worker)
