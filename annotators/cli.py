"""`medcurate labelstudio start|stop|status` and `medcurate review push|pull`."""

from __future__ import annotations

import argparse
import json
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

    review = subparsers.add_parser("review", help="send samples to physician review and gather verdicts")
    review_commands = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = review_commands.add_parser("push", help="push pending samples (Parquet shards) and the outbox")
    _common(push)
    push.add_argument("paths", nargs="*", metavar="PARQUET", help="shards whose pending samples are pushed")
    push.set_defaults(handler=review_command)
    pull = review_commands.add_parser("pull", help="export reviews; write records, agreement and verdicts")
    _common(pull)
    pull.add_argument("--out", metavar="DIR", help="review folder (default: review.reviews_dir)")
    pull.set_defaults(handler=review_command)


def _review_config(args: argparse.Namespace) -> Any:
    from medcurate.config import ConfigError, load_config

    try:
        return load_config(args.config, args.overrides).review
    except ConfigError as error:
        raise CliError(str(error)) from None


def labelstudio_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.annotators import server

    config = _review_config(args).label_studio
    try:
        if args.action == "start":
            state = server.start(config)
            print(f"Label Studio running at {state.url} (pid {state.pid}); log in as {config.username}")
            token = server.mask(server.admin_token(config))
            print(f"API token: {token} (from ${config.token_env} or the data folder)")
        elif args.action == "stop":
            print("stopped" if server.stop(config) else "not running")
        else:
            state = server.status(config)
            if state is None:
                print("not running")
                return 1
            print(f"running at {state.url} (pid {state.pid}, data {state.data_dir})")
    except server.ServerError as error:
        raise CliError(str(error)) from None
    return 0


def review_command(args: argparse.Namespace, extra: list[str]) -> int:
    from dataclasses import asdict

    from medcurate.annotators.server import ServerError

    config = _review_config(args)
    try:
        if args.action == "push":
            from medcurate.annotators.push import pending_in_shards, push_samples

            print(json.dumps(asdict(push_samples(pending_in_shards(args.paths), config))))
        else:
            from medcurate.annotators.pull import pull_reviews

            print(json.dumps(asdict(pull_reviews(config, args.out)), indent=2))
    except ServerError as error:
        raise CliError(str(error)) from None
    return 0
