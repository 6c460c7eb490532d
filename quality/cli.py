"""`medcurate quality train|bootstrap` (the fastText relevance and quality heads) and `medcurate report`."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from medcurate.cli import CliError


def register(subparsers: Any) -> None:
    quality = subparsers.add_parser("quality", help="train the health-relevance and quality models")
    commands = quality.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = commands.add_parser(
        "train", help="fit both heads from the physicians' verdicts in the warehouse (held out by source)"
    )
    train.add_argument("--config", metavar="FILE", help="YAML run config (publish and review sections)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument("--dataset", help="dataset whose published texts the verdicts refer to")
    train.add_argument(
        "--public-data",
        default="../shared/data",
        metavar="DIR",
        help="public labelled texts mixed into the relevance head (skipped when absent)",
    )
    train.set_defaults(handler=train_command)
    boot = commands.add_parser(
        "bootstrap", help="train the bundled relevance model from public labelled data (deterministic)"
    )
    boot.add_argument("--data", default="../shared/data", metavar="DIR", help="the public data folder")
    boot.add_argument("--output", required=True, metavar="DIR", help="folder to write model.ftz + card.json")
    boot.set_defaults(handler=bootstrap_command)

    report = subparsers.add_parser(
        "report", help="rebuild a run's HTML report (reports/<dataset>/<run>/index.html)"
    )
    report.add_argument("run", nargs="?", help="run id; default: the newest published run")
    report.add_argument("--config", metavar="FILE", help="YAML run config (its publish.output_dir is used)")
    report.add_argument("--output", metavar="DIR", help="output folder (publish.output_dir)")
    report.set_defaults(handler=report_command)


def train_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.config import load_config
    from medcurate.quality.public_data import relevance_examples
    from medcurate.quality.train import TrainingError, published_texts, train_from_verdicts

    config = load_config(args.config, args.overrides)
    verdicts = Path(config.review.reviews_dir or "") / "verdicts.parquet"
    if not verdicts.is_file():
        raise CliError(f"no verdicts at {verdicts}: run `medcurate review pull` first")
    texts = published_texts(config.publish.output_dir, args.dataset or config.dataset)
    public = relevance_examples(args.public_data) if Path(args.public_data).is_dir() else None
    models_dir = Path(config.publish.output_dir) / "models"
    try:
        folders = train_from_verdicts(verdicts, texts, models_dir, public)
    except TrainingError as error:
        raise CliError(str(error)) from None
    for head, folder in folders.items():
        print(f"{head}\t{folder}")
    return 0


def bootstrap_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.quality.train import train_bootstrap

    if not Path(args.data).is_dir():
        raise CliError(f"public data folder {args.data} not found")
    output = Path(args.output)
    scratch = output.parent / f".{output.name}-build"
    shutil.rmtree(scratch, ignore_errors=True)
    folder = train_bootstrap(Path(args.data), scratch)
    output.mkdir(parents=True, exist_ok=True)
    for name in ("model.ftz", "card.json"):
        shutil.copyfile(folder / name, output / name)
    shutil.rmtree(scratch)
    print(output)
    return 0


def report_command(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.config import load_config
    from medcurate.quality.report import build_report, find_run

    output_dir = args.output or load_config(args.config).publish.output_dir
    try:
        _, version_dir, report_dir = find_run(output_dir, args.run)
    except FileNotFoundError as error:
        raise CliError(str(error)) from None
    print(build_report(version_dir, report_dir))
    return 0
