"""`medcurate export`: registered with the other commands, so it imports nothing heavy until run."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="write a published version in another format")
    formats = export.add_subparsers(dest="format", metavar="FORMAT", required=True)
    wds = formats.add_parser(
        "webdataset",
        help="tar shards of KEY.json and KEY.P.EXT images (WebDataset)",
        description="VERSION is a version folder (holding manifest.json), or a version name (v0002, 2, "
        "latest) of the dataset in --output's catalog.",
    )
    wds.add_argument("version", metavar="VERSION")
    wds.add_argument("out", metavar="OUT", help="folder the tar shards are written to")
    wds.add_argument("--output", default="out", metavar="DIR", help="output folder holding catalog.duckdb")
    wds.add_argument("--dataset", help="dataset (needed when the catalog holds several)")
    wds.add_argument("--shard-mb", type=int, default=512, help="start a new tar past this many MiB")
    wds.set_defaults(handler=webdataset_command)


def _version_dir(args: argparse.Namespace) -> str:
    from medcurate.cli import CliError
    from medcurate.warehouse import storage
    from medcurate.warehouse.catalog import Catalog, CatalogError, catalog_path

    if storage.exists(storage.join(args.version, "manifest.json")):
        return args.version
    try:
        with Catalog(catalog_path(args.output), read_only=True) as catalog:
            dataset, version = catalog.resolve(
                args.dataset, None if args.version == "latest" else args.version
            )
    except CatalogError as error:
        raise CliError(str(error)) from None
    return storage.join(args.output, dataset, version)


def webdataset_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.warehouse.export import export_webdataset

    version_dir = _version_dir(args)
    result = export_webdataset(version_dir, args.out, shard_bytes=args.shard_mb * 1024 * 1024)
    print(
        f"{result.samples} samples, {result.images} images in {len(result.shards)} shard(s) under {args.out}"
    )
    return 0
