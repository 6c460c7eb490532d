"""`medcurate labelstudio start|stop|status|backup|restore|add-reviewer|list-reviewers`, `medcurate review push|pull`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from medcurate.cli import CliError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML run config (its review section is used)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )


def register(subparsers: Any) -> None:
    server = subparsers.add_parser(
        "labelstudio", help="run the local Label Studio server for physician review"
    )
    server_commands = server.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in (
        ("start", "install on first use, start on 127.0.0.1, wait until healthy"),
        ("stop", "stop the server"),
        ("status", "print whether the server is running, and where"),
    ):
        parser = server_commands.add_parser(action, help=help_text)
        _common(parser)
        parser.set_defaults(handler=labelstudio_command)
    add = server_commands.add_parser(
        "add-reviewer",
        help="create a physician's account (own organization and projects); prints the password once",
    )
    _common(add)
    add.add_argument("email", help="the physician's e-mail address: their login")
    add.add_argument(
        "--specialty",
        help="their specialty: tasks predicted in it go to them first (review.specialty_reviewers overrides)",
    )
    add.set_defaults(handler=reviewer_command)
    listed = server_commands.add_parser("list-reviewers", help="list reviewer accounts (no secrets)")
    _common(listed)
    listed.set_defaults(handler=reviewer_command)
    for action, help_text in (
        ("backup", "pg_dump the review database (while the server runs) into FILE"),
        ("restore", "replace the review database with a backup FILE (stops and restarts the server)"),
    ):
        parser = server_commands.add_parser(action, help=help_text)
        _common(parser)
        parser.add_argument("file", metavar="FILE")
        parser.set_defaults(handler=labelstudio_command)

    review = subparsers.add_parser("review", help="send samples to physician review and gather verdicts")
    review_commands = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = review_commands.add_parser(
        "push", help="push pending samples (of shards, or of a published version) and the outbox"
    )
    _common(push)
    push.add_argument(
        "paths", nargs="*", metavar="PARQUET", help="shards to push; default: the latest published version"
    )
    push.add_argument(
        "--dataset", help="dataset in publish.output_dir's catalog (needed when it holds several)"
    )
    push.add_argument("--version", help="e.g. v0002 or 2; default: the latest validated version")
    push.set_defaults(handler=review_command)
    pull = review_commands.add_parser("pull", help="export reviews; write records, agreement and verdicts")
    _common(pull)
    pull.add_argument("--out", metavar="DIR", help="review folder (default: review.reviews_dir)")
    pull.set_defaults(handler=review_command)


def _run_config(args: argparse.Namespace) -> Any:
    from medcurate.config import ConfigError, load_config

    try:
        return load_config(args.config, args.overrides)
    except ConfigError as error:
        raise CliError(str(error)) from None


def _published_shards(args: argparse.Namespace, output_dir: str, catalog_file: str | None) -> list[str]:
    """The shards of the chosen (default: latest validated) version in the output folder's catalog."""
    from medcurate.warehouse.catalog import Catalog, CatalogError, catalog_path

    try:
        with Catalog(catalog_path(output_dir, catalog_file), read_only=True) as catalog:
            dataset, version = catalog.resolve(args.dataset, args.version)
            paths = catalog.shard_paths(dataset, version)
    except CatalogError as error:
        raise CliError(str(error)) from None
    print(f"pushing pending samples of {dataset} {version} ({len(paths)} shards)", file=sys.stderr)
    return paths


def labelstudio_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.annotators import server

    config = _run_config(args).review.label_studio
    try:
        if args.action == "start":
            state = server.start(config)
            print(f"Label Studio running at {state.url} (pid {state.pid}); log in as {config.username}")
            token = server.mask(server.admin_token(config))
            print(f"API token: {token} (from ${config.token_env} or the data folder)")
        elif args.action == "stop":
            print("stopped" if server.stop(config) else "not running")
        elif args.action == "backup":
            print(f"review database written to {server.backup(config, args.file)}")
        elif args.action == "restore":
            server.restore(config, args.file)
            print(f"review database restored from {args.file}; server running")
        else:
            report = server.report(config)
            if not report["running"]:
                print(f"not running; database: {json.dumps(report['database'])}")
                return 1
            print(f"running at {report['url']} (pid {report['pid']}, data {report['data_dir']})")
            for part in ("database", "workers", "queue"):
                print(f"{part}: {json.dumps(report[part])}")
    except server.ServerError as error:
        raise CliError(str(error)) from None
    return 0


def reviewer_command(args: argparse.Namespace, extra: list[str]) -> int:
    """add-reviewer prints the generated password once, on stdout only: it is neither logged nor stored."""
    from medcurate.annotators import reviewers, server
    from medcurate.annotators.projects import SPECIALTIES

    config = _run_config(args).review.label_studio
    if args.action == "list-reviewers":
        for reviewer in reviewers.list_reviewers(config):
            print(f"{reviewer.email}\t{reviewer.specialty or '-'}\tuser {reviewer.user_id}")
        return 0
    if args.specialty is not None and args.specialty not in SPECIALTIES:
        raise CliError(f"--specialty must be one of: {', '.join(SPECIALTIES)}")
    try:
        reviewer, password = reviewers.add_reviewer(config, args.email, args.specialty)
    except (reviewers.ReviewerError, server.ServerError) as error:
        raise CliError(str(error)) from None
    state = server.read_state(config)
    print(f"Reviewer {reviewer.email} added (their own organization and review projects).")
    print(f"Send them, by a channel you trust: address {state.url if state else '(see labelstudio status)'}")
    print(f"  login {reviewer.email}")
    print(f"  password {password}")
    print(
        "The password is shown only this once and is not stored; they can change it under Account & Settings."
    )
    return 0


def review_command(args: argparse.Namespace, extra: list[str]) -> int:
    from dataclasses import asdict

    from medcurate.annotators.server import ServerError

    run_config = _run_config(args)
    config = run_config.review
    try:
        if args.action == "push":
            from medcurate.annotators.push import pending_in_shards, push_samples

            paths = args.paths or _published_shards(
                args, run_config.publish.output_dir, run_config.publish.catalog
            )
            print(json.dumps(asdict(push_samples(pending_in_shards(paths), config))))
        else:
            from medcurate.annotators.pull import pull_reviews

            print(json.dumps(asdict(pull_reviews(config, args.out, deid=run_config.deid)), indent=2))
    except ServerError as error:
        raise CliError(str(error)) from None
    return 0
