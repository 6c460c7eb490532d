"""`medcurate versions` and `medcurate query`: what has been published, and SQL over it."""

from __future__ import annotations

import argparse

from medcurate.cli import CliError


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="out", metavar="DIR", help="output folder holding catalog.duckdb")


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


def _open_catalog(output: str):
    from medcurate.warehouse.catalog import Catalog, CatalogError, catalog_path

    try:
        return Catalog(catalog_path(output), read_only=True)
    except CatalogError as error:
        raise CliError(str(error)) from None


def versions_command(args: argparse.Namespace, extra: list[str]) -> int:
    with _open_catalog(args.output) as catalog:
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

    with _open_catalog(args.output) as catalog:
        try:
            relation = catalog.query(args.sql, args.dataset, args.version)
        except (CatalogError, duckdb.Error) as error:
            raise CliError(str(error)) from None
        if relation is None:
            return 0
        if args.format == "table":
            print(relation.fetchdf().to_string(index=False, max_colwidth=60))
        elif args.format == "csv":
            print(relation.fetchdf().to_csv(index=False), end="")
        else:
            print(relation.fetchdf().to_json(orient="records", lines=True, date_format="iso"), end="")
    return 0
