"""Where tasks run: in this process, in local worker processes, or on a Dask cluster.

Every pool takes the same tasks (plain module-level functions with picklable arguments) and
hands back each outcome once. Callers never depend on completion order: they key outcomes
by what they submitted. A local worker that dies breaks its pool; the pool is rebuilt and
the lost tasks run again (at most MAX_ATTEMPTS times each). On Dask the scheduler does the
same; `events()` reports, in both modes, which workers were lost and which tasks were retried.

Cluster mode (`--scheduler tcp://HOST:PORT`) needs the `cluster` extra (dask.distributed) and
workers that can read the evidence at the same paths (docs/CLUSTER.md).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


CLUSTER_HINT = "--scheduler needs the optional extra: pip install 'bitsdb[cluster]' (dask.distributed)"
#: A task that has killed this many worker processes is failed, not tried again (a crafted input
#: that crashes a native library must not take the whole run with it).
MAX_ATTEMPTS = 3

Outcome = tuple[Any, "BaseException | None"]


class PoolError(Exception):
    """The pool cannot start (no such scheduler, extra missing); one line."""


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class Pool:
    """Submit tasks, collect outcomes one at a time."""

    workers = 1
    description = "in process"

    def submit(self, fn: Callable, *args: Any) -> int:
        raise NotImplementedError

    def next_done(self) -> tuple[int, Any, BaseException | None]:
        """(task id, result, exception) of a finished task; blocks until one is."""
        raise NotImplementedError

    def events(self) -> list[str]:
        return []

    def close(self) -> None:
        """Release workers (idempotent)."""

    def abort(self) -> None:
        """Stop now, without waiting for running tasks (interrupted, or the caller stopped early)."""
        self.close()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.abort() if kind is not None else self.close()


class InlinePool(Pool):
    """Tasks run here, one by one, in submission order (jobs=1: no process start-up at all)."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._next = 0

    def submit(self, fn: Callable, *args: Any) -> int:
        self._next += 1
        self._queue.append((self._next, fn, args))
        return self._next

    def next_done(self) -> tuple[int, Any, BaseException | None]:
        key, fn, args = self._queue.popleft()
        try:
            return key, fn(*args), None
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who says where
            return key, None, exc


def _context():
    """fork when it is safe (Linux, no other threads: cheapest start, works from any __main__),
    else forkserver/spawn."""
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@dataclass
class _Task:
    fn: Callable
    args: tuple
    attempts: int = 0
    future: Any = None


class LocalPool(Pool):
    """Worker processes on this machine; a dead worker's tasks are run again on a fresh pool."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local worker process(es)"
        self._context = _context()
        self._executor = None
        self._tasks: dict[int, _Task] = {}
        self._next = 0
        self._lost = 0
        self._retried: list[int] = []

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                                 initializer=_worker_init)
        return self._executor

    def submit(self, fn: Callable, *args: Any) -> int:
        self._next += 1
        task = self._tasks[self._next] = _Task(fn, args)
        self._start(task)
        return self._next

    def _start(self, task: _Task) -> None:
        task.attempts += 1
        task.future = self._pool().submit(task.fn, *task.args)

    def next_done(self) -> tuple[int, Any, BaseException | None]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        while True:
            by_future = {task.future: key for key, task in self._tasks.items()}
            done, _ = wait(by_future, return_when=FIRST_COMPLETED)
            future = min(done, key=lambda f: by_future[f])
            key = by_future[future]
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                self._recover_broken(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - the task's own failure, for the caller
                del self._tasks[key]
                return key, None, exc
            del self._tasks[key]
            return key, result, None

    def _recover_broken(self, exc: BaseException) -> None:
        """A worker died (killed, or crashed in a native library): start a new pool, run the
        unfinished tasks again; a task that was running at MAX_ATTEMPTS breaks is failed."""
        self._lost += 1
        broken, self._executor = self._executor, None
        broken.shutdown(wait=False, cancel_futures=True)
        for key, task in sorted(self._tasks.items()):
            if task.future.done() and not task.future.cancelled() and task.future.exception() is None:
                continue                                   # finished before the break: keep it
            if task.attempts >= MAX_ATTEMPTS:
                failed = _Finished(RuntimeError(f"a worker process died {task.attempts} times running this "
                                                "task (crashed or killed); not tried again"))
                task.future = failed
                continue
            self._retried.append(key)
            self._start(task)

    def events(self) -> list[str]:
        if not self._lost:
            return []
        return [f"{self._lost} local worker pool(s) broke (a worker process died); "
                f"{len(set(self._retried))} unfinished task(s) were run again"]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def abort(self) -> None:
        """End the worker processes now (not after their current task) and wait until they are gone:
        the caller then removes the run's private folder."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        processes = list((getattr(executor, "_processes", None) or {}).values())    # the executor's own table
        for process in processes:
            process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


def _worker_init() -> None:
    """Local workers leave SIGINT and SIGTERM to the main process, which stops them (SIGTERM, default
    action) and removes the run's private folder; no worker prints a traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Finished:
    """A stand-in future that has already failed."""

    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException:
        return self._exc

    def result(self) -> Any:
        raise self._exc


class DaskPool(Pool):
    """An existing Dask cluster; tasks run on its workers, which read evidence by path."""

    def __init__(self, address: str, timeout: float = 20.0) -> None:
        try:
            from distributed import Client, as_completed
            from distributed.comm.addressing import parse_address, parse_host_port
        except ImportError:
            raise PoolError(CLUSTER_HINT) from None
        try:
            # A malformed address is refused here: a Client that fails on it half-built waits 40 s when
            # collected at exit and then prints a traceback of its own.
            scheme, location = parse_address(address)
            if scheme in ("tcp", "tls"):
                parse_host_port(location)
        except ValueError as exc:
            raise PoolError(f"--scheduler {address}: not a scheduler address ({' '.join(str(exc).split())[:160]})"
                            ) from None
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, not a scheduler …
            raise PoolError(f"--scheduler {address}: cannot connect ({' '.join(str(exc).split())[:160]})") from None
        self.address = address
        # with_results: results are fetched in the background as tasks finish, not one round trip each
        self._as_completed = as_completed([], loop=self._client.loop, with_results=True, raise_errors=False)
        self._keys: dict[str, int] = {}
        self._futures: dict[int, Any] = {}
        self._next = 0
        self._run = uuid.uuid4().hex[:12]
        self._started = time.time()
        self._seen_workers = set(self._client.scheduler_info().get("workers", {}))
        self.workers = max(1, len(self._seen_workers))
        self.description = f"Dask cluster {address}, {len(self._seen_workers)} worker(s)"

    def submit(self, fn: Callable, *args: Any) -> int:
        self._next += 1
        key = f"bitsdb-{getattr(fn, '__name__', 'task')}-{self._run}-{self._next}"
        future = self._client.submit(fn, *args, key=key, pure=False)
        self._keys[key] = self._next
        self._futures[self._next] = future
        self._as_completed.add(future)
        return self._next

    def next_done(self) -> tuple[int, Any, BaseException | None]:
        future, result = next(self._as_completed)
        task = self._keys.pop(future.key)
        self._futures.pop(task, None)
        status = future.status
        future.release()
        if status == "error":                       # result is (type, exception, traceback)
            return task, None, _worker_failure(result[1])
        if status == "cancelled" or isinstance(result, BaseException):
            return task, None, RuntimeError(f"task cancelled by the cluster ({result})")
        return task, result, None

    def events(self) -> list[str]:
        """Workers the scheduler removed during this run, and our tasks they were running."""
        try:
            log = self._client.get_events("all")
        except Exception:  # noqa: BLE001 - the summary can do without
            return []
        lost, retried = [], set()
        for stamp, message in log:
            if stamp < self._started or not isinstance(message, dict) or message.get("action") != "remove-worker":
                continue
            lost.append(message.get("worker", "?"))
            for key in list(message.get("processing-tasks", ())) + list(message.get("lost-computed-tasks", ())):
                key = key if isinstance(key, str) else str(key)
                if key.startswith("bitsdb-") and key.split("-")[-2] == self._run:
                    retried.add(key)
        if not lost:
            return []
        return [f"{len(lost)} worker(s) left the cluster during the run ({', '.join(sorted(lost))}); "
                f"{len(retried)} task(s) they were running were run again on other workers"]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def abort(self) -> None:
        """Cancel this run's tasks on the cluster, then leave it."""
        if self._client is not None:
            try:
                self._client.cancel(list(self._futures.values()))
            except Exception:  # noqa: BLE001 - leaving matters more than tidying
                pass
        self.close()


def _worker_failure(exc: BaseException) -> BaseException:
    if type(exc).__name__ == "KilledWorker":
        return RuntimeError(f"workers died running this task {MAX_ATTEMPTS}+ times (crashed or killed); "
                            "not tried again")
    return exc


def open_pool(jobs: int | None, scheduler: str | None = None, tasks: int | None = None) -> Pool:
    """A Dask pool when `scheduler` is given, else `jobs` local processes (default: usable cores);
    in-process when only one worker would be used. Raises PoolError (one line)."""
    if scheduler:
        return DaskPool(scheduler)
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    if tasks is not None:
        jobs = min(jobs, max(tasks, 1))
    return InlinePool() if jobs <= 1 else LocalPool(jobs)


@dataclass
class TaskRunner:
    """Runs tasks on a pool and calls each task's callback with its outcome; counts for progress."""

    pool: Pool
    callbacks: dict[int, Callable[[Any, "BaseException | None"], None]] = field(default_factory=dict)
    submitted: int = 0
    finished: int = 0

    def submit(self, fn: Callable, args: tuple, done: Callable[[Any, "BaseException | None"], None]) -> None:
        self.callbacks[self.pool.submit(fn, *args)] = done
        self.submitted += 1

    @property
    def busy(self) -> bool:
        return bool(self.callbacks)

    def step(self) -> None:
        """Wait for one task and run its callback (which may submit more)."""
        key, result, exc = self.pool.next_done()
        self.finished += 1
        self.callbacks.pop(key)(result, exc)

