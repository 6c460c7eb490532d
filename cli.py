"""The `medcurate` command. Each area registers its own subcommands; heavy imports wait for the handler."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from medcurate import __version__

# Modules that expose `register(subparsers)`; each adds its subcommands and their handlers.
COMMAND_MODULES = (
    "medcurate.pipelines.cli",
    "medcurate.pipelines.ingest.cli",
    "medcurate.warehouse.cli",
    "medcurate.privacy.cli",
    "medcurate.dedup.cli",
    "medcurate.annotators.cli",
    "medcurate.quality.cli",
)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medcurate",
        description="Curate raw health data into de-identified, deduplicated, physician-reviewed, "
        "versioned Parquet datasets.",
    )
    parser.add_argument("--version", action="version", version=f"medcurate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (default: one line)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if "--debug" in extra:  # also after the command (`medcurate run ... --debug`), not passed to Beam
        extra.remove("--debug")
        args.debug = True
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Our own progress at INFO; libraries (Beam, Great Expectations, Presidio) only when they warn.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("medcurate").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args, extra) or 0)
    except CliError as error:
        print(f"medcurate: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug:
            raise
        print(f"medcurate: error: {describe_error(error)} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `python -m medcurate.cli`: run the package's module, so that the handlers' CliError (imported
    # from medcurate.cli) is the one caught here.
    from medcurate.cli import main as package_main

    sys.exit(package_main())
