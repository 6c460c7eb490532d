"""Fault injection for crash tests: the process dies at a named publish step.

`MEDCURATE_FAULT_AT=<step>` kills the process there with SIGKILL (no cleanup, no `finally`), as a
power cut or an OOM kill would. `MEDCURATE_FAULT_AT=<step>:enospc` raises `OSError(ENOSPC)` there
instead, as a disk that fills at that moment would. The steps are listed in `STEPS`, in run order.
"""

from __future__ import annotations

import errno
import os
import signal

FAULT_ENV = "MEDCURATE_FAULT_AT"

# Inside the publish (under the dataset lock), in order.
PUBLISH_STEPS = (
    "recovered",  # leftovers of interrupted publishes recovered; nothing of this run moved yet
    "shard_moved",  # the first shard is in the new version folder (a folder without manifest)
    "shards_moved",  # every shard moved and hashed
    "validation_moved",  # validation results in the version folder
    "manifest_written",  # manifest.json complete; the version is not in the catalog yet
    "catalog_registered",  # the catalog holds the version; LATEST still names the previous one
    "latest_written",  # LATEST names the new version: published
)
# After the version is published (failures here are warnings, never a failed run).
AFTER_PUBLISH_STEPS = (
    "reports",  # before dead letters, drops and summary.json are written
    "report_html",  # before the HTML run report (index.html) is written
    "cleanup",  # before the run's staging folder is removed
    "review_push",  # before the push to Label Studio
)
STEPS = PUBLISH_STEPS + AFTER_PUBLISH_STEPS


def fault_point(step: str) -> None:
    """Dies (or raises ENOSPC) here when `MEDCURATE_FAULT_AT` names this step; otherwise nothing."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, kind = wanted.partition(":")
    if name not in STEPS or kind not in ("", "kill", "enospc"):
        raise ValueError(f"{FAULT_ENV}={wanted!r}: use one of {', '.join(STEPS)}, optionally ':enospc'")
    if name != step:
        return
    if kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"(fault injected at {step})")
    os.kill(os.getpid(), signal.SIGKILL)
