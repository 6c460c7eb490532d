"""`medcurate deid text|fhir|dicom`: the same de-identification code the pipeline runs, on files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medcurate.cli import CliError


def _load_config(args: argparse.Namespace) -> Any:
    """The deid section of the run config, `--site` applied (and checked: a broken dictionary
    stops the command before any document is read)."""
    from medcurate.config import ConfigError, load_config
    from medcurate.privacy.site import SiteDictionary, SiteDictionaryError

    try:
        config = load_config(args.config, args.set).deid
    except ConfigError as error:
        raise CliError(str(error)) from None
    if getattr(args, "site", None) is not None:
        config = config.model_copy(update={"site": str(args.site)})
    if config.site:
        try:
            SiteDictionary.load(config.site)
        except SiteDictionaryError as error:
            raise CliError(str(error)) from None
    return config


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise CliError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("text"), str):
                raise CliError(f"{path}:{number}: each line needs an `id` and a string `text`")
            rows.append(row)
    return rows


def run_text(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.privacy.text import TextDeidentifier

    if not args.input.is_file():
        raise CliError(f"no such input file: {args.input}")
    config = _load_config(args)
    rows = _read_jsonl(args.input)
    deidentifier = TextDeidentifier(config)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as out:
        for begin in range(0, len(rows), 256):
            chunk = rows[begin : begin + 256]
            results = deidentifier.deidentify_batch([row["text"] for row in chunk])
            for row, result in zip(chunk, results, strict=True):
                spans = [
                    {"start": s.start, "end": s.end, "type": s.type, "score": s.score, "source": s.source}
                    for s in result.spans
                ]
                record = {
                    "id": row["id"],
                    "text": result.text,
                    "spans": spans,
                    "confidence": result.confidence,
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"deid text: {len(rows)} documents -> {args.output}", file=sys.stderr)
    return 0


def run_fhir(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.privacy.fhir import FhirDeidentifier, run_tree

    if not args.input.is_dir():
        raise CliError(f"no such input folder: {args.input}")
    if args.output.resolve() == args.input.resolve():
        raise CliError("the output folder must differ from the input folder")
    written, failed = run_tree(args.input, args.output, FhirDeidentifier(_load_config(args)))
    # Counts only: Synthea-style file names carry patient names.
    print(f"deid fhir: {written} files written, {failed} unreadable (not JSON)", file=sys.stderr)
    return 1 if failed else 0


def run_dicom(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.privacy.dicom import DicomDeidentifier, deidentify_tree
    from medcurate.privacy.text import TextDeidentifier

    if not args.input.exists():
        raise CliError(f"no such input: {args.input}")
    if args.output.resolve() == args.input.resolve():
        raise CliError("the output folder must differ from the input")
    config = _load_config(args)
    deidentifier = DicomDeidentifier(config, TextDeidentifier(config) if config.ocr else None)
    written, failed = deidentify_tree(args.input, args.output, deidentifier)
    print(
        f"deid dicom: {written} files written, {failed} unreadable; boxes in {args.output / 'redactions.jsonl'}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def run_train(args: argparse.Namespace, extra: list[str]) -> int:
    import tempfile

    from medcurate.privacy.augment import fold_of, read_gold
    from medcurate.privacy.tagger import TaggerConfig, char_scores, record_metrics, train

    docs = []
    for path in args.gold:
        if not path.is_file():
            raise CliError(f"no such gold file: {path}")
        try:
            docs.extend(read_gold(path))
        except (ValueError, UnicodeDecodeError) as error:
            raise CliError(str(error)) from None
    if not any(doc.spans for doc in docs):
        raise CliError("the gold files hold no PHI spans to learn from")
    config = TaggerConfig(
        **{
            key: value
            for key, value in vars(args).items()
            if key in TaggerConfig.__dataclass_fields__ and value is not None
        }
    )
    log = lambda message: print(f"deid train: {message}", file=sys.stderr)  # noqa: E731
    metrics: dict[str, Any] = {}
    if args.eval_folds > 1:
        # Held-out figures for the artifact: one fold of the groups (patients, queries) is kept
        # out, a model is fitted on the rest and scored on it; the model written is fitted on all.
        held = [doc for doc in docs if fold_of(doc.group, args.eval_folds) == 0]
        rest = [doc for doc in docs if fold_of(doc.group, args.eval_folds) != 0]
        if held and any(doc.spans for doc in rest):
            log(f"fitting on {len(rest)} documents to score {len(held)} held-out ones")
            with tempfile.TemporaryDirectory() as scratch:
                probe = train(rest, scratch, config)
                predicted = [[(s.start, s.end) for s in probe.find(doc.text)] for doc in held]
            metrics = {"held_out_documents": len(held), **char_scores(held, predicted)}
            log(f"held-out char recall {metrics['char_recall']}, precision {metrics['char_precision']}")
    log(f"fitting on {len(docs)} documents from {len(args.gold)} file(s)")
    tagger = train(docs, args.output, config, args.name, args.version, [p.name for p in args.gold], log)
    record_metrics(tagger, metrics)
    print(f"deid train: {tagger.name} -> {args.output}", file=sys.stderr)
    return 0


def run_learn_site(args: argparse.Namespace, extra: list[str]) -> int:
    """Learn a site dictionary from gold notes and physicians' missed-PHI flags; prints counts only
    (the entries are PHI)."""
    from medcurate.privacy.site import SiteDictionary, SiteDictionaryError, read_gold

    if not args.gold and not args.reviews:
        raise CliError("give --gold NOTES.jsonl and/or --reviews REVIEW_DIR")
    paths = list(args.gold or [])
    for folder in args.reviews or []:
        paths.append(_missed_phi_file(folder))
    for path in paths:
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    try:
        docs = read_gold(paths)
        dictionary = SiteDictionary.learn(docs, name=args.name)
        metadata = dictionary.save(args.output)
    except SiteDictionaryError as error:
        raise CliError(str(error)) from None
    counts = metadata["counts"]
    print(
        f"deid learn-site: {len(docs)} documents -> {counts['entries']} entries "
        f"({counts['guarded']} needing context), {metadata['name']} version {metadata['version']} "
        f"in {args.output}",
        file=sys.stderr,
    )
    return 0


def _missed_phi_file(folder: Path) -> Path:
    """A review folder (written by `medcurate review pull`) or its missed-PHI file itself."""
    from medcurate.annotators.missed import MISSED_PHI_FILE

    return folder / MISSED_PHI_FILE if folder.is_dir() else folder


def register(subparsers: argparse._SubParsersAction) -> None:
    deid = subparsers.add_parser("deid", help="de-identify text, FHIR bundles or DICOM files")
    commands = deid.add_subparsers(dest="deid_command", metavar="KIND", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", type=Path, help="run config YAML (its deid section is used)")
        parser.add_argument(
            "--set", action="append", default=[], metavar="deid.KEY=VALUE", help="override a config key"
        )
        parser.add_argument(
            "--site",
            type=Path,
            metavar="SITE_DIR",
            help="site dictionary from `deid learn-site` (sets deid.site)",
        )

    text = commands.add_parser("text", help="JSONL of {id, text} -> JSONL of {id, text, spans}")
    text.add_argument("--input", type=Path, required=True)
    text.add_argument("--output", type=Path, required=True)
    common(text)
    text.set_defaults(handler=run_text)

    learn = commands.add_parser(
        "learn-site",
        help="learn a site dictionary (the site's own names) from gold notes and physicians' flags",
    )
    learn.add_argument(
        "--gold",
        type=Path,
        nargs="+",
        metavar="NOTES.jsonl",
        help="JSONL of {text, spans: [{start, end, type?}]}",
    )
    learn.add_argument(
        "--reviews",
        type=Path,
        nargs="+",
        metavar="REVIEW_DIR",
        help="review folders from `medcurate review pull` (their physicians' missed-PHI flags)",
    )
    learn.add_argument("--output", type=Path, required=True, metavar="SITE_DIR")
    learn.add_argument("--name", default="site", help="dictionary name, recorded in run manifests")
    learn.set_defaults(handler=run_learn_site)

    fhir = commands.add_parser(
        "fhir", help="FHIR R4 bundles or plain JSON: IN_DIR -> OUT_DIR, same file names"
    )
    fhir.add_argument("input", type=Path, metavar="IN_DIR")
    fhir.add_argument("output", type=Path, metavar="OUT_DIR")
    common(fhir)
    fhir.set_defaults(handler=run_fhir)

    trainer = commands.add_parser(
        "train",
        help="fit the PHI tagger on gold notes -> a model folder (model, metrics, data hash, config)",
        description="Gold lines are JSON objects with `text` and `spans` (`start`, `end`, optional "
        "`type`); Presidio InputSample JSON arrays are read too. Use the folder with "
        "`--set deid.tagger=DIR`.",
    )
    trainer.add_argument("--gold", type=Path, nargs="+", required=True, metavar="GOLD")
    trainer.add_argument("--output", type=Path, required=True, metavar="DIR")
    trainer.add_argument("--name", default="phi-tagger")
    trainer.add_argument("--version", default="0001")
    trainer.add_argument(
        "--eval-folds",
        type=int,
        default=5,
        help="score a model fitted without one of this many patient-grouped folds first (0: skip)",
    )
    trainer.add_argument("--max-iterations", dest="max_iterations", type=int)
    trainer.add_argument("--copies", type=int, help="surrogate-swapped copies of each gold document")
    trainer.add_argument("--generated", type=int, help="template notes added to the training data")
    trainer.add_argument("--threshold", type=float, help="PHI probability at which a token is redacted")
    trainer.add_argument("--seed", type=int)
    trainer.set_defaults(handler=run_train)

    dicom = commands.add_parser(
        "dicom", help="DICOM files: IN -> OUT, same relative paths, OUT/redactions.jsonl"
    )
    dicom.add_argument("input", type=Path, metavar="IN", help="a DICOM file or a folder of them")
    dicom.add_argument("output", type=Path, metavar="OUT")
    common(dicom)
    dicom.set_defaults(handler=run_dicom)
