"""Local file locks: one publisher per dataset at a time, and a live-run marker per staging folder.

The locks are `fcntl.flock` locks on local files: in the dataset folder, or for a dataset on an
object store in a local folder named after it (`lock_root()`), so they serialize runs on one
machine or on a shared filesystem that supports flock. Two machines writing
one `gs://` or `s3://` output are not serialized by them. A lock dies with its process, so a killed
run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medcurate.warehouse import storage

log = logging.getLogger(__name__)

DATASET_LOCK = ".lock"
STAGING = ".staging"
MARKER_SUFFIX = ".lock"


def _try_lock(handle: int) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def exclusive(path: Path, waiting_message: str = "") -> Iterator[None]:
    """Holds an exclusive lock on `path` (created if missing), waiting for its holder if there is one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(handle):
            if waiting_message:
                log.info(waiting_message)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.debug("lock %s acquired after %.1f s", path, time.monotonic() - started)
        yield
    finally:
        os.close(handle)


def lock_root() -> Path:
    """This machine's folder for the lock files of datasets on object stores (gs://, s3://)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medcurate" / "locks"


def local_dir(dataset_dir: str) -> Path:
    """The local folder of a dataset's lock files: the dataset folder itself when it is local; for
    `gs://bucket/out/ds`, `lock_root()/gs/bucket/out/ds` (flock needs a local file)."""
    if not storage.is_remote(dataset_dir):
        return Path(dataset_dir)
    scheme, _, rest = dataset_dir.partition("://")
    return lock_root() / scheme / rest.strip("/")


def dataset_lock_path(dataset_dir: str) -> Path:
    return local_dir(dataset_dir) / DATASET_LOCK


@contextmanager
def publishing(dataset_dir: str) -> Iterator[None]:
    """The dataset's publish lock: concurrent runs queue here, one publish at a time."""
    with exclusive(dataset_lock_path(dataset_dir), "another run is publishing this dataset: waiting for it"):
        yield


def marker_path(dataset_dir: str, run_id: str) -> Path:
    return local_dir(dataset_dir) / STAGING / f"{run_id}{MARKER_SUFFIX}"


@contextmanager
def live_run(dataset_dir: str, run_id: str) -> Iterator[None]:
    """Marks a run's staging folder as in use for as long as the run lives (gc leaves it alone).

    Taken before anything is staged, so a staging folder without a held marker is a leftover.
    """
    path = marker_path(dataset_dir, run_id)
    with exclusive(path):
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _marker_held(path: Path) -> bool:
    """Whether a live run holds this marker (a marker we can lock belongs to a dead run)."""
    try:
        handle = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(handle)
    finally:
        os.close(handle)


def dead_staging(dataset_dir: str, staged_runs: list[str]) -> list[str]:
    """The run ids among `staged_runs` whose run is gone: its marker is not held by anyone.

    A staging folder without any marker (from a version of medcurate that took none) counts as
    dead only when it is older than every live run's marker, so it cannot belong to a running run.
    """
    root = local_dir(dataset_dir) / STAGING
    live = [path for path in root.glob(f"*{MARKER_SUFFIX}") if _marker_held(path)]
    oldest_live = min((path.stat().st_mtime for path in live), default=float("inf"))
    dead = []
    for run_id in staged_runs:
        marker = marker_path(dataset_dir, run_id)
        if marker.exists():
            if not _marker_held(marker):
                dead.append(run_id)
        elif storage.is_remote(dataset_dir):
            # Object stores have no folder times: an unmarked staging folder is dead when no run lives.
            if not live:
                dead.append(run_id)
        elif (root / run_id).exists() and (root / run_id).stat().st_mtime < oldest_live:
            dead.append(run_id)
    return dead
