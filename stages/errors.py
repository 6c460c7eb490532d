"""Errors shared by every stage and command: the one a user can fix, and one-line descriptions."""

from __future__ import annotations

import errno


class CliError(Exception):
    """An error the user can fix; printed as one line, without a traceback."""


# OS errors a user can act on, by errno: what to tell them instead of a traceback.
_OS_REASONS = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a path component is a file, not a folder",
}


def _os_error(error: BaseException) -> OSError | None:
    """The OSError under `error`, also when Beam wrapped it (BeamIOError, IOError(OSError))."""
    seen = 0
    while error is not None and seen < 10:
        seen += 1
        if isinstance(error, OSError) and error.errno is not None:
            return error
        details = getattr(error, "exception_details", None)
        if isinstance(details, dict) and details:
            error = next(iter(details.values()))
        elif error.args and isinstance(error.args[0], BaseException):
            error = error.args[0]
        else:
            error = error.__cause__ or error.__context__
    return None


def describe_error(error: BaseException) -> str:
    """One line a user can act on: the reason and the path for OS errors, else the first line."""
    found = _os_error(error)
    if found is not None:
        reason = _OS_REASONS.get(found.errno, found.strerror or str(found))
        where = " ".join(str(name) for name in (found.filename, found.filename2) if name)
        return f"{reason}: {where}" if where else reason
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    return first if isinstance(error, CliError) else f"{type(error).__name__}: {first}"[:500]
