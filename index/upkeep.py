"""Slow work that keeps a large open index fast (graph builds, keyword index catch-up), done
one task at a time in a background thread so that no search and no write waits for it."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

logger = logging.getLogger(__name__)

Task = Callable[[], None]


class Upkeep:
    """A queue of named tasks run in order by one daemon thread, started on demand.

    A task already queued or running under the same name is not queued again. Tasks poll
    `cancelled` between steps; `close` sets it and waits for the running task to return.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._queue: dict[str, Task] = {}
        self._running: str | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    def cancelled(self) -> bool:
        """True once `close` was called: a running task should stop at its next step."""
        return self._cancel.is_set()

    def submit(self, key: str, task: Task) -> bool:
        """Queue `task` under `key`; False if that key is already queued or running, or the
        upkeep is closed."""
        with self._cond:
            if self._cancel.is_set() or key in self._queue or self._running == key:
                return False
            self._queue[key] = task
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-upkeep", daemon=True
                )
                self._thread.start()
            return True

    def busy(self) -> list[str]:
        """Names of the running task and the queued ones."""
        with self._cond:
            return [k for k in (self._running, *self._queue) if k is not None]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no task is queued or running; False if `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and self._running is None, timeout=timeout
            )

    def close(self) -> None:
        """Cancel: queued tasks are dropped, the running one is asked to stop; wait for it."""
        self._cancel.set()
        with self._cond:
            self._queue.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._cancel.is_set() or not self._queue:
                    self._queue.clear()
                    self._running, self._thread = None, None
                    self._cond.notify_all()
                    return
                key = next(iter(self._queue))
                task = self._queue.pop(key)
                self._running = key
            try:
                task()
            except Exception:  # a failed build leaves the exact search in place; never fatal
                logger.exception("background %s of %s failed", key, self._name)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()


@contextlib.contextmanager
def write_lock(path: Path, cancelled: Callable[[], bool], poll: float = 0.25) -> Iterator[bool]:
    """Hold the index's `write.lock` from a background task: a lock object of its own (so it
    also excludes this process's writers), waited for in short polls so that `cancelled()`
    ends the wait. Yields False when cancelled or the lock cannot be taken at all."""
    lock = filelock.FileLock(str(path))
    while True:
        try:
            lock.acquire(timeout=poll)
            break
        except filelock.Timeout:
            if cancelled():
                yield False
                return
        except OSError as exc:
            logger.warning("cannot take %s (%s); background upkeep skipped", path, exc)
            yield False
            return
    try:
        yield True
    finally:
        lock.release()


def pid_alive(text: str) -> bool:
    """True if `text` is the id of a running process (this one included): the marker that a
    file or folder being written aside still has its writer."""
    try:
        pid = int(text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, and is not ours to signal
    return True
