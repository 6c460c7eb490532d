"""The fastText heads: metrics, source-held-out training from verdicts, versioned artifacts, routing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcurate.annotators.routing import AUDIT, MODEL_UNCERTAIN, active_selection, uncertainty
from medcurate.config import load_config
from medcurate.pipelines.curate import quality_models
from medcurate.quality.models import (
    LATEST_FILE,
    Example,
    TextScorer,
    bundled_relevance_dir,
    calibration,
    describe,
    normalize,
    roc_auc,
    split_by_group,
)
from medcurate.quality.train import TrainingError, source_group, train_from_verdicts, verdict_examples

GOOD = [
    "dose",
    "adjusted",
    "renal",
    "function",
    "monitor",
    "blood",
    "pressure",
    "weekly",
    "advised",
    "follow",
]
POOR = ["click", "here", "subscribe", "now", "best", "deals", "free", "shipping", "login", "banner"]


def invented(words: list[str], rng: random.Random) -> str:
    return " ".join(rng.choice(words) for _ in range(12)) + "."


def test_auc_and_calibration_by_hand() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    table = calibration([0, 1, 1, 1], [0.05, 0.95, 0.95, 0.95])
    assert table["ece"] == pytest.approx(0.25 * 0.05 + 0.75 * (1 - 0.95))


def test_split_keeps_each_source_on_one_side() -> None:
    examples = [Example(f"text {i}", i % 2, f"site-{i % 9}") for i in range(90)]
    train, test = split_by_group(examples, 0.3)
    assert train and test
    assert not {e.group for e in train} & {e.group for e in test}


def test_normalize_drops_numbers_and_placeholders() -> None:
    assert normalize("BP 120/80, call <PHONE> on\n3 May") == "bp call on may"


def test_source_group() -> None:
    assert source_group("https://Clinic.example.org/a/b") == "clinic.example.org"
    assert source_group("notes/ward.jsonl#record=3") == "notes/ward.jsonl"


def test_bundled_relevance_model_scores_health_above_other_text() -> None:
    scorer = TextScorer(bundled_relevance_dir(), bundled_relevance_dir())
    (health, _), (other, _) = scorer.score(
        [
            "Metformin is a first-line treatment for type 2 diabetes; check kidney function before starting.",
            "The away team scored twice in the second half and the coach praised the defence.",
        ]
    )
    assert health > 0.5 > other
    card = describe(bundled_relevance_dir())
    assert card["head"] == "relevance" and card["auc"] > 0.9


def _verdict_warehouse(tmp_path: Path, sources: int = 16, per_source: int = 8):
    rng = random.Random(3)
    texts, rows = {}, []
    for s in range(sources):
        for i in range(per_source):
            good = (s + i) % 2 == 0
            sample_id = f"s{s}-{i}"
            texts[sample_id] = (invented(GOOD if good else POOR, rng), f"https://site{s}.example.org/p{i}")
            rows.append(
                {
                    "sample_id": sample_id,
                    "decision": "accepted" if good else "rejected",
                    "accuracy": 4.0 if good else None,
                    "specialty": "cardiology" if good else None,
                }
            )
    rows.append({"sample_id": "s0-0", "decision": "adjudicate", "accuracy": None, "specialty": None})
    path = tmp_path / "verdicts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path, texts


def test_verdict_labels() -> None:
    texts = {"a": ("x", "u1"), "b": ("y", "u2"), "c": ("z", "u3"), "d": ("w", "u4")}
    heads = verdict_examples(
        [
            {"sample_id": "a", "decision": "accepted", "accuracy": 5.0, "specialty": "oncology"},
            {"sample_id": "b", "decision": "accepted", "accuracy": 2.0, "specialty": None},
            {"sample_id": "c", "decision": "rejected", "accuracy": None, "specialty": None},
            {"sample_id": "d", "decision": "incomplete", "accuracy": None, "specialty": None},
        ],
        texts,
    )
    assert [e.label for e in heads["quality"]] == [1, 0, 0]
    assert [e.label for e in heads["relevance"]] == [1, 0]


@pytest.mark.slow
def test_train_from_verdicts_writes_versioned_artifacts(tmp_path: Path) -> None:
    verdicts, texts = _verdict_warehouse(tmp_path)
    models = tmp_path / "out" / "models"
    folders = train_from_verdicts(verdicts, texts, models)
    for head in ("quality", "relevance"):
        card = json.loads((folders[head] / "card.json").read_text())
        metrics = card["metrics"]["test"]
        assert {"accuracy", "auc", "calibration"} <= set(metrics)
        assert metrics["auc"] > 0.9  # the invented vocabularies do not overlap
        assert card["trained_on"]["verdicts_sha256"]
        snapshot = pq.read_table(folders[head] / "snapshot.parquet").to_pylist()
        assert {"sample_id", "decision"} == set(snapshot[0]) and len(snapshot) == len(texts) + 1
        assert (models / head / LATEST_FILE).read_text().strip() == folders[head].name
    scorer = TextScorer(folders["relevance"], folders["quality"])
    (_, good), (_, poor) = scorer.score([invented(GOOD, random.Random(9)), invented(POOR, random.Random(9))])
    assert good > 0.5 > poor
    # The pipeline picks up what `medcurate quality train` wrote beside the datasets.
    config = load_config(None, [f"publish.output_dir={tmp_path / 'out'}"])
    assert quality_models(config) == {
        "relevance": str(folders["relevance"]),
        "quality": str(folders["quality"]),
    }


def test_too_few_verdicts_is_a_clear_error(tmp_path: Path) -> None:
    verdicts, texts = _verdict_warehouse(tmp_path, sources=2, per_source=2)
    with pytest.raises(TrainingError, match="need 2 of each"):
        train_from_verdicts(verdicts, texts, tmp_path / "models")


def test_active_selection_spends_budget_on_uncertain_plus_audit() -> None:
    candidates = [(f"id{i}", uncertainty(i / 100)) for i in range(101)]
    chosen = active_selection(candidates, budget=10, audit_share=0.2, seed=0)
    assert len(chosen) == 10
    assert sum(reason == AUDIT for reason in chosen.values()) == 2
    uncertain = {sample_id for sample_id, reason in chosen.items() if reason == MODEL_UNCERTAIN}
    assert uncertain <= {f"id{i}" for i in range(44, 57)}  # scores nearest 0.5
    assert "id50" in uncertain
    assert active_selection(candidates, budget=500, audit_share=0.1, seed=0).keys() == {
        c[0] for c in candidates
    }


def test_router_spends_the_budget_per_kind_on_the_least_sure() -> None:
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from medcurate.annotators.beam import RouteForReview
    from medcurate.annotators.config import ReviewConfig
    from medcurate.schemas.sample import new_sample

    scores = {"web": [0.02, 0.48, 0.9, 0.55, 0.99], "clinical": [0.3, 0.5, 0.97]}
    samples = [
        new_sample(
            id=f"{kind}-{i}",
            source_kind=kind,
            modality="text",
            source_uri=f"invented/{kind}/{i}",
            text="x",
            relevance_score=score,
            quality_score=0.99,
        )
        for kind, values in scores.items()
        for i, score in enumerate(values)
    ]
    config = ReviewConfig(audit_fraction=0, active_budget_by_kind={"web": 2, "clinical": 1})
    with beam.Pipeline("FnApiRunner") as pipeline:
        routed = (
            pipeline
            | beam.Create(samples)
            | RouteForReview(config)
            | beam.Filter(lambda s: MODEL_UNCERTAIN in s["review_reasons"])
            | beam.Map(lambda s: s["id"])
        )
        assert_that(routed, equal_to(["web-1", "web-3", "clinical-1"]))


@pytest.mark.slow
def test_quality_eval_smoke() -> None:
    """The benchmark's tiny run: both curves and the ratio as the last line."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "benchmarks/quality_eval.py", "--budget", "50", "--round", "25", "--seeds", "1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode in (0, 1), done.stderr
    assert lines[-1].startswith("active/random reviews to reach AUC")
    assert len([line for line in lines if line.strip()[:2].isdigit()]) == 2  # one row per round
