"""The `medcurate` command. Each area registers its own subcommands; heavy imports wait for the handler."""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import logging
import os
import sys

from medcurate import __version__
from medcurate.stages.errors import CliError, describe_error  # commands import them from here

# Modules that expose `register(subparsers)`; each adds its subcommands and their handlers.
COMMAND_MODULES = (
    "medcurate.pipelines.cli",
    "medcurate.pipelines.ingest.cli",
    "medcurate.warehouse.cli",
    "medcurate.warehouse.export_cli",
    "medcurate.privacy.cli",
    "medcurate.dedup.cli",
    "medcurate.annotators.cli",
    "medcurate.quality.cli",
)


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


# Imported by spaCy (thinc) and Presidio whenever installed, at a cost of seconds per start (tens
# of seconds with CUDA libraries beside them); no command uses them.
UNUSED_FRAMEWORKS = ("torch", "torchvision", "transformers")


class _AbsentFrameworks(importlib.abc.MetaPathFinder):
    """Answers every import of these frameworks with ModuleNotFoundError, as if not installed.

    A finder, not `sys.modules[name] = None`: libraries that look a module up in sys.modules
    (scipy.stats asks for `sys.modules["torch"].Tensor`) would find that None and fail.
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (left out by medcurate)", name=fullname)
        return None


def skip_unused_frameworks() -> None:
    """Make the frameworks above look absent to this process, unless MEDCURATE_IMPORT_TORCH=1 or one
    is loaded already. Libraries import them optionally, so they carry on without."""
    if os.environ.get("MEDCURATE_IMPORT_TORCH") == "1":
        return
    if any(isinstance(finder, _AbsentFrameworks) for finder in sys.meta_path):
        return
    absent = frozenset(name for name in UNUSED_FRAMEWORKS if name not in sys.modules)
    if absent:
        sys.meta_path.insert(0, _AbsentFrameworks(absent))


# Third-party warnings that say nothing about the run, by logger and message start. Filtered at
# the console only: the library itself leaves logging alone.
HARMLESS_WARNINGS = (
    # Beam without its gcp extra, logged at import: only Dataflow and BigQuery need apitools.
    ("root", "apitools not found"),
    # Beam scans a Map/FlatMap callable's source for `yield` beside `return value` (apache/beam#22969)
    # and counts the returns of nested helper functions too (dedup's generators have such helpers).
    (
        "apache_beam.transforms.core",
        "Using yield and return in the process method of <class "
        "'apache_beam.transforms.core.CallableWrapperDoFn'>",
    ),
    # Local worker processes relay this at start-up: no schemas or logical types are registered.
    ("apache_beam.runners.portability.local_job_service", "No semi_persistent_directory found"),
)


def _drop_harmless_warning(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    # Worker processes' messages arrive wrapped (`Worker: severity: WARN ... message: "..."`).
    return not any(
        record.name == name and (message.startswith(start) or f'message: "{start}' in message)
        for name, start in HARMLESS_WARNINGS
    )


def entry() -> int:
    """The `medcurate` command: a process of its own, so the frameworks above can be left out (a
    program that calls `main` keeps its own imports)."""
    skip_unused_frameworks()
    return main()


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
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_harmless_warning)
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
    from medcurate.cli import entry as package_entry

    sys.exit(package_entry())
