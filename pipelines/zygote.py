"""Local worker processes forked from one prepared process, so that they share its memory.

Beam's local runner in `multi_processing` mode starts each worker as a fresh interpreter
(`python -m apache_beam.runners.worker.sdk_worker_main`), and each one imports Beam, pyarrow,
DuckDB, spaCy and this package on its own: a few hundred MB per worker, paid again for every core.
`LocalRunner` (pipelines/local_runner.py) starts one *zygote* instead: a process that imports all
of that once and forks a worker whenever the runner asks for one. A forked worker shares the
zygote's pages copy-on-write (the code, the modules' objects, frozen out of the garbage
collector's reach so that collecting does not write to them); only what a worker changes becomes
its own. The worker then runs Beam's own harness entry point, with the settings a spawned worker
gets. The zygote is itself forked from the command when the command has no thread that makes a
fork unsafe (`fork_safe`), so it shares the command's imports too; otherwise it is a fresh
interpreter. It never starts a thread before it has forked its last worker.

Lifetime: the zygote reads its orders from a pipe and ends, taking its workers with it, when the
pipe closes: when the run is over, and also when the command dies without cleaning up. Each
worker is killed by the kernel if the zygote dies (Linux's parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

FORKED_URN = "medcurate:env:forked_python_worker:v1"
# The command line Beam's FnApiRunner gives its spawned workers in multi_processing mode.
SPAWNED_COMMAND = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"
# What every worker imports, whatever the pipeline: Beam's harness and the libraries under it.
BASE_PRELOAD = ("apache_beam.runners.worker.sdk_worker_main",)
# Imported by stages when their models load; shared when the zygote imports them first.
STAGE_PRELOAD = ("medcurate.privacy.text", "medcurate.quality.langid", "medcurate.quality.models")
STOP_WAIT_S = 10.0
PR_SET_PDEATHSIG = 1
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters


# Native threads a process may fork with: jemalloc's (pyarrow) purger, which registers fork handlers.
# OpenBLAS's pool threads carry the main thread's name and register fork handlers too.
FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd"})


def fork_safe() -> bool:
    """Whether this process can fork a zygote: no Python thread but the main one, and no native
    thread but those of FORK_SAFE_THREADS or of thread pools named after the main thread. gRPC's
    threads (left by an earlier run in this process) make a fork unsafe for a child that uses gRPC."""
    if threading.active_count() != 1:
        return False
    try:
        tasks = os.listdir("/proc/self/task")
        names = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in tasks]
        main = Path(f"/proc/self/task/{os.getpid()}/comm").read_text().strip()
    except OSError:
        return False
    return all(name == main or name in FORK_SAFE_THREADS for name in names)


class ZygoteError(RuntimeError):
    """The zygote could not start or stopped answering."""


class Zygote:
    """The command's handle on a zygote process: starts workers, learns when they end, stops it."""

    def __init__(self, preload: Iterable[str], env: dict[str, str] | None = None, fork: bool = False) -> None:
        """`fork`: the zygote is forked from this process (sharing what it has imported) instead
        of started as a fresh interpreter; `env` then does not apply (the allocator settings are
        set with mallopt instead)."""
        orders_r, orders_w = os.pipe()
        replies_r, replies_w = os.pipe()
        modules = list(dict.fromkeys([*BASE_PRELOAD, *preload]))
        self.pid = 0
        self.process: subprocess.Popen[bytes] | None = None
        if fork:
            self.pid = os.fork()
            if self.pid == 0:
                code = 1
                try:
                    os.close(orders_w)
                    os.close(replies_r)
                    _set_worker_malloc()
                    _serve(orders_r, replies_w, modules)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "medcurate.pipelines.zygote", str(orders_r), str(replies_w), *modules],
                pass_fds=(orders_r, replies_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
            self.pid = self.process.pid
        os.close(orders_r)
        os.close(replies_w)
        self._orders: IO[str] = os.fdopen(orders_w, "w")
        self._replies: IO[str] = os.fdopen(replies_r, "r")
        self._lock = threading.Lock()
        self._started: dict[str, threading.Event] = {}
        self._pids: dict[str, int] = {}
        self._exited: dict[str, int] = {}
        self._exit_events: dict[str, threading.Event] = {}
        self._ready = threading.Event()
        self._gone = threading.Event()
        self._reader = threading.Thread(target=self._read, name="zygote-replies", daemon=True)
        self._reader.start()
        self._ready.wait()
        if self._gone.is_set():
            raise ZygoteError(f"the worker zygote exited at start-up (exit code {self._wait(5)})")

    def _wait(self, timeout: float) -> int | None:
        """The zygote's exit code, None if it has not exited within `timeout` seconds."""
        if self.process is not None:
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self._replies:
            reply = json.loads(line)
            with self._lock:
                if reply["kind"] == "ready":
                    self._ready.set()
                elif reply["kind"] == "started":
                    self._pids[reply["id"]] = reply["pid"]
                    self._started[reply["id"]].set()
                elif reply["kind"] == "exited":
                    self._exited[reply["id"]] = reply["code"]
                    self._exit_events.setdefault(reply["id"], threading.Event()).set()
        with self._lock:  # the zygote is gone: nothing it started can still be waited for
            self._gone.set()
            self._ready.set()
            for event in [*self._started.values(), *self._exit_events.values()]:
                event.set()

    def start_worker(self, worker_id: str, env: dict[str, str]) -> int:
        """Forks a worker that runs Beam's harness with `env` added to its environment; its pid."""
        started = threading.Event()
        with self._lock:
            if self._gone.is_set():
                raise ZygoteError("the worker zygote has exited")
            self._started[worker_id] = started
            self._exit_events.setdefault(worker_id, threading.Event())
            self._orders.write(json.dumps({"id": worker_id, "env": env}) + "\n")
            self._orders.flush()
        started.wait()
        with self._lock:
            if worker_id not in self._pids:
                raise ZygoteError("the worker zygote exited before it started a worker")
            return self._pids[worker_id]

    def wait_worker(self, worker_id: str, timeout: float | None = None) -> int | None:
        """The worker's exit code once it has ended (negative: killed by that signal); None on
        timeout."""
        with self._lock:
            event = self._exit_events.setdefault(worker_id, threading.Event())
        if not event.wait(timeout):
            return None
        with self._lock:
            return self._exited.get(worker_id, -1)

    def close(self) -> int:
        """Ends the zygote and any worker still running; its exit code."""
        with contextlib.suppress(OSError, ValueError):
            self._orders.close()
        code = self._wait(STOP_WAIT_S + 5)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            code = self._wait(STOP_WAIT_S)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            self._replies.close()
        return code

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- inside the zygote -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Asks the kernel to kill this process when its parent (the zygote) dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the zygote died before the signal was armed
        os._exit(1)


def _run_worker(env: dict[str, str], closing: Iterable[int]) -> None:
    """In the forked child: becomes a Beam worker, as `sdk_worker_main` would, and exits."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _die_with_parent()
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - stays open for the life of the worker
        _forget_parent_logging()
        os.environ.update(env)
        from apache_beam.runners.worker import sdk_worker_main

        sdk_worker_main.main(sys.argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _forget_parent_logging() -> None:
    """A worker drops the console handlers a zygote forked from the command inherited (the zygote
    keeps them, so what it logs while it imports passes the command's console filter): a worker
    sends its logs to the runner, which prints them, as a spawned worker does."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def _set_worker_malloc() -> None:
    """WORKER_MALLOC (pipelines/options.py) for a zygote forked from a running process, where glibc
    has read its environment already: the same settings through mallopt, each with the value the
    environment gives it (the user's, or local_worker_environment's) or else WORKER_MALLOC's."""
    from medcurate.pipelines.options import WORKER_MALLOC

    parameters = {"MALLOC_ARENA_MAX": M_ARENA_MAX, "MALLOC_MMAP_THRESHOLD_": M_MMAP_THRESHOLD}
    with contextlib.suppress(OSError, AttributeError, ValueError):
        libc = ctypes.CDLL(None)
        for name, default in WORKER_MALLOC.items():
            value = os.environ.setdefault(name, default)  # the workers' environment says what they run with
            libc.mallopt(parameters[name], int(value))


def _serve(orders_fd: int, replies_fd: int, modules: list[str]) -> None:
    """The zygote: imports `modules`, says it is ready, then forks a worker per order it reads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
    from medcurate.cli import skip_unused_frameworks

    skip_unused_frameworks()  # as in every worker process of the local runner
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # a worker imports what it needs itself: sharing is lost, not the run
            print(f"medcurate worker zygote: could not preload {module}: {error}", file=sys.stderr)
    gc.collect()
    gc.freeze()
    replies = os.fdopen(replies_fd, "w")

    def reply(**fields: Any) -> None:
        replies.write(json.dumps(fields) + "\n")
        replies.flush()

    reply(kind="ready")
    children: dict[int, str] = {}
    buffered = b""
    open_ = True
    while open_ or children:
        if open_:
            readable, _, _ = select.select([orders_fd], [], [], 0.2)
            if readable:
                chunk = os.read(orders_fd, 1 << 16)
                if not chunk:
                    open_ = False
                    _stop(children)
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    order = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        _run_worker(order["env"], (orders_fd, replies_fd))
                    children[pid] = order["id"]
                    reply(kind="started", id=order["id"], pid=pid)
        _reap(children, reply, block=not open_)


def _reap(children: dict[int, str], reply: Any, block: bool) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        if pid in children:
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                reply(kind="exited", id=children.pop(pid), code=code)


def _stop(children: dict[int, str]) -> None:
    """The command is done with the zygote (or gone): workers still running get SIGTERM, then
    SIGKILL after STOP_WAIT_S. A finished run has none left: they end when the runner closes their
    control stream."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if children:
        timer = threading.Timer(STOP_WAIT_S, _kill_all, args=(list(children),))
        timer.daemon = True
        timer.start()


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def new_zygote_key() -> str:
    return uuid.uuid4().hex


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
