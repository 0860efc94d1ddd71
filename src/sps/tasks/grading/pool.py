"""A process pool with a per-item timeout that kills and replaces a hung worker.

concurrent.futures cannot cancel a running item (and a killed worker breaks the whole
executor), so this is a small pool of its own: one pipe per worker, one item in flight per
worker, and a deadline per item counted from when that worker received it. Workers come from
a forkserver that has already imported math-verify and sympy, so a replacement starts in
milliseconds and nothing inherits the parent's threads (torch) as plain fork would.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait

PRELOAD = ["math_verify", "sps.tasks.grading.mathans"]  # imported once, in the forkserver
MEMORY_LIMIT = 4 << 30  # bytes of address space per worker: a runaway power fails, not the box
STARTUP_TIMEOUT = 60.0  # seconds for a worker to come up (the first one starts the forkserver)
TIMEOUT = object()  # result marker of an item that overran its deadline or killed its worker


def _serve(conn: Connection, fn: Callable) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass  # not every platform lets a process lower its limit; the timeout still holds
    conn.send("ready")
    while True:
        item = conn.recv()
        if item is None:
            return
        try:
            result = fn(*item)
        except Exception:  # a grader error grades wrong; the worker lives on
            result = False
        conn.send(result)


class _Worker:
    def __init__(self, ctx, fn: Callable) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, fn), daemon=True)
        self.proc.start()
        child.close()
        # A worker that cannot even start (bad environment) must fail loudly, not make every
        # item look like a timeout.
        if not self.conn.poll(STARTUP_TIMEOUT) or self.conn.recv() != "ready":
            self.proc.kill()
            raise RuntimeError(f"grading worker did not start (exit code {self.proc.exitcode})")
        self.index = -1
        self.deadline = 0.0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


class TimeoutPool:
    """Run fn(*item) for many items in `workers` processes, each item within `timeout` s."""

    def __init__(self, fn: Callable, workers: int = 2, timeout: float = 5.0) -> None:
        self.fn, self.timeout = fn, timeout
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)
        self.workers = [_Worker(self.ctx, fn) for _ in range(max(1, workers))]
        self.timeouts = 0  # items that timed out over this pool's life

    def map(self, items: Sequence[tuple]) -> list:
        """Results in order; TIMEOUT for an item that overran or crashed its worker."""
        results: list = [None] * len(items)
        todo = deque(range(len(items)))
        idle = list(self.workers)
        busy: dict[Connection, _Worker] = {}
        while todo or busy:
            while todo and idle:
                self._send(idle.pop(), todo.popleft(), items, busy)
            wait_for = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout=wait_for):
                worker = busy.pop(conn)
                try:
                    results[worker.index] = conn.recv()
                    idle.append(worker)
                except (EOFError, OSError):  # died (memory limit, segfault): counted as timeout
                    results[worker.index] = TIMEOUT
                    idle.append(self._replace(worker))
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if worker.deadline <= now:
                    del busy[conn]
                    results[worker.index] = TIMEOUT
                    idle.append(self._replace(worker))
        return results

    def _send(self, worker: _Worker, index: int, items: Sequence[tuple], busy: dict) -> None:
        worker.index, worker.deadline = index, time.monotonic() + self.timeout
        worker.conn.send(items[index])
        busy[worker.conn] = worker

    def _replace(self, worker: _Worker) -> _Worker:
        self.timeouts += 1
        worker.kill()
        fresh = _Worker(self.ctx, self.fn)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.proc.join(timeout=1)
            if worker.proc.is_alive():
                worker.kill()
        self.workers = []

    def __enter__(self) -> TimeoutPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_SHARED: dict[tuple[int, float], TimeoutPool] = {}


def shared_pool(fn: Callable, workers: int, timeout: float) -> TimeoutPool:
    """One long-lived pool per setting, for per-row grading (training rewards)."""
    key = (workers, timeout)
    if key not in _SHARED:
        if not _SHARED:
            atexit.register(lambda: [p.close() for p in _SHARED.values()])
        _SHARED[key] = TimeoutPool(fn, workers, timeout)
    return _SHARED[key]
