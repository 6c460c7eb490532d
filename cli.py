"""The `medcurate` command. Each area registers its own subcommands; heavy imports wait for the handler."""

from __future__ import annotations

import argparse
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
)


class CliError(Exception):
    """An error the user can fix; printed as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medcurate",
        description="Curate raw health data into de-identified, deduplicated, physician-reviewed, "
        "versioned Parquet datasets.",
    )
    parser.add_argument("--version", action="version", version=f"medcurate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
