"""`medcurate versions`, `medcurate query`, `medcurate diff` and `medcurate gc`: what has been
published, SQL over it, what changed between versions, and cleaning up after interrupted runs.
Readers hold the catalog briefly and read-only."""

from __future__ import annotations

import argparse

from medcurate.cli import CliError


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="out", metavar="DIR", help="output folder holding catalog.duckdb")
    parser.add_argument(
        "--catalog",
        metavar="FILE",
        help="local catalog file (publish.catalog), needed for a gs:// or s3:// output",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    versions = subparsers.add_parser("versions", help="list published dataset versions")
    _add_output(versions)
    versions.add_argument("--dataset", help="only this dataset")
    versions.set_defaults(handler=versions_command)

    query = subparsers.add_parser(
        "query",
        help="run SQL over a published version (view `samples`)",
        epilog='example: medcurate query "SELECT modality, count(*) FROM samples GROUP BY ALL"',
    )
    query.add_argument("sql", help="SQL; the view `samples` holds the chosen version's rows")
    _add_output(query)
    query.add_argument("--dataset", help="dataset (needed when the catalog holds several)")
    query.add_argument("--version", help="e.g. v0001 or 1; default: the latest validated version")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.set_defaults(handler=query_command)

    diff = subparsers.add_parser(
        "diff",
        help="samples added, removed and changed between two versions, by source kind and reason",
        epilog="example: medcurate diff v0003 v0004 --output out --dataset notes-2026",
    )
    diff.add_argument("old", help="older version (v0003 or 3) or a version folder")
    diff.add_argument("new", help="newer version (v0004 or 4) or a version folder")
    _add_output(diff)
    diff.add_argument("--dataset", help="dataset (needed when the catalog holds several)")
    diff.add_argument("--format", choices=["table", "json"], default="table")
    diff.set_defaults(handler=diff_command)

    gc = subparsers.add_parser(
        "gc",
        help="recover interrupted publishes and remove staging left by runs that died",
        description="Waits for any publish in progress, completes or rolls back versions an "
        "interrupted publish left, fixes LATEST, and removes the staging folders of runs that are no "
        "longer running (never those of a running run).",
    )
    _add_output(gc)
    gc.add_argument("--dataset", help="only this dataset (default: every dataset in the output folder)")
    gc.set_defaults(handler=gc_command)


def _open_catalog(args: argparse.Namespace):
    from medcurate.warehouse.catalog import Catalog, CatalogError, catalog_path

    try:
        return Catalog(catalog_path(args.output, args.catalog), read_only=True)
    except CatalogError as error:
        raise CliError(str(error)) from None


def versions_command(args: argparse.Namespace, extra: list[str]) -> int:
    with _open_catalog(args) as catalog:
        rows = catalog.versions(args.dataset)
    if not rows:
        print("no published versions")
        return 0
    print(f"{'dataset':<24} {'version':<8} {'parent':<8} {'rows':>10}  {'valid':<5}  created")
    for row in rows:
        print(
            f"{row['dataset']:<24} {row['version']:<8} {row['parent'] or '-':<8} {row['rows']:>10,}  "
            f"{'yes' if row['validation_passed'] else 'NO':<5}  {row['created_at']}"
        )
    return 0


def query_command(args: argparse.Namespace, extra: list[str]) -> int:
    import duckdb

    from medcurate.warehouse.catalog import CatalogError

    with _open_catalog(args) as catalog:
        try:
            relation = catalog.query(args.sql, args.dataset, args.version)
            frame = None if relation is None else relation.fetchdf()
        except (CatalogError, duckdb.Error) as error:
            raise CliError(str(error)) from None
    # Printed after the catalog is closed, so a slow terminal never holds up a publish.
    if frame is None:
        return 0
    if args.format == "table":
        print(frame.to_string(index=False, max_colwidth=60))
    elif args.format == "csv":
        print(frame.to_csv(index=False), end="")
    else:
        print(frame.to_json(orient="records", lines=True, date_format="iso"), end="")
    return 0


def _version_dir(args: argparse.Namespace, version: str) -> str:
    """A version folder: the argument itself when it holds a manifest, else looked up in the catalog."""
    from medcurate.warehouse import storage
    from medcurate.warehouse.catalog import CatalogError
    from medcurate.warehouse.publish import MANIFEST

    if storage.exists(storage.join(version, MANIFEST)):
        return version
    with _open_catalog(args) as catalog:
        try:
            dataset, version = catalog.resolve(args.dataset, version)
        except CatalogError as error:
            raise CliError(str(error)) from None
        rows = [row for row in catalog.versions(dataset) if row["version"] == version]
    return rows[0]["path"]


def diff_command(args: argparse.Namespace, extra: list[str]) -> int:
    import json

    from medcurate.warehouse.diff import diff_versions, render

    result = diff_versions(_version_dir(args, args.old), _version_dir(args, args.new))
    if args.format == "json":
        print(json.dumps({"old": result.old, "new": result.new, **result.totals(), "rows": result.rows()}))
    else:
        print(render(result))
    return 0


def gc_command(args: argparse.Namespace, extra: list[str]) -> int:
    from pathlib import Path

    from medcurate.warehouse import locks
    from medcurate.warehouse.catalog import CatalogError, catalog_path
    from medcurate.warehouse.publish import recover
    from medcurate.warehouse.storage import is_remote

    if is_remote(args.output):
        raise CliError(f"gc cleans a local output folder; {args.output} is remote")
    try:
        catalog_file = catalog_path(args.output, args.catalog)
    except CatalogError as error:
        raise CliError(str(error)) from None
    root = Path(args.output)
    if args.dataset:
        datasets = [root / args.dataset]
    else:
        datasets = sorted(p.parent for p in root.glob(f"*/{locks.STAGING}")) + sorted(
            p.parent for p in root.glob(f"*/{locks.DATASET_LOCK}")
        )
    actions = 0
    for dataset_dir in sorted(set(datasets)):
        if not dataset_dir.is_dir():
            raise CliError(f"no dataset folder {dataset_dir}")
        with locks.publishing(str(dataset_dir)):
            for line in recover(str(dataset_dir), catalog_file):
                print(f"{dataset_dir.name}: {line}")
                actions += 1
    if not actions:
        print("nothing to clean up")
    return 0
