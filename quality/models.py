"""Supervised fastText heads (health relevance, quality): training, metrics, versioned artifacts, scoring.

An artifact is a folder holding `model.ftz` and `card.json` (head, version, metrics, what it learned
from); trained heads also keep `snapshot.parquet`, the sample ids and labels they saw (never text).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HEADS = ("relevance", "quality")
MODEL_FILE = "model.ftz"
CARD_FILE = "card.json"
SNAPSHOT_FILE = "snapshot.parquet"
LATEST_FILE = "LATEST"
BUNDLED_RELEVANCE = "relevance-bootstrap"
# fastText reads one line; the opening of a document carries its topic.
MAX_CHARS = 4000
_SPACE = re.compile(r"\s+")
# Numbers, and the placeholders de-identification leaves, say nothing about topic or quality; the
# public negatives are full of phone numbers and dates, which would otherwise decide alone.
_NOISE = re.compile(r"\S*\d\S*|<[A-Z_]+>|\[[A-Z_]+\]")
# Small on purpose: a few thousand labelled texts, two labels, a model of a few hundred kB.
TRAIN_PARAMS: dict[str, Any] = {
    "epoch": 25,
    "lr": 0.5,
    "dim": 32,
    "wordNgrams": 2,
    "minCount": 1,
    "bucket": 100_000,
    "loss": "softmax",
    "thread": 1,
    "seed": 7,
}


# Should a fresh process still report NaN, these variants are tried in turn.
_NAN_RETRIES: tuple[dict[str, Any], ...] = ({}, {"seed": 8}, {"loss": "hs"}, {"dim": 16}, {"thread": 2})


def normalize(text: str) -> str:
    """One lower-case line without numbers or redaction placeholders."""
    return _SPACE.sub(" ", _NOISE.sub(" ", text[:MAX_CHARS])).strip().lower()


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1: relevant / accepted
    group: str = ""  # the source it came from: train and test never share one


def train_fasttext(examples: Sequence[Example], params: dict[str, Any] | None = None):
    """A supervised fastText model over `__label__1` / `__label__0` lines."""
    settings = TRAIN_PARAMS | (params or {})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
        handle.writelines(f"__label__{example.label} {normalize(example.text)}\n" for example in examples)
        path = handle.name
    try:
        for change in _NAN_RETRIES:
            try:
                return _train_in_fresh_process(path, settings | change)
            except RuntimeError as error:
                if "NaN" not in str(error):
                    raise
        raise RuntimeError("fastText training reported NaN with every fallback setting")
    finally:
        os.unlink(path)


_TRAIN_SCRIPT = """
import json, sys
import fasttext
try:
    fasttext.train_supervised(input=sys.argv[1], verbose=0, **json.loads(sys.argv[2])).save_model(sys.argv[3])
except RuntimeError as error:
    sys.exit(f"RuntimeError: {error}")
"""


def _train_in_fresh_process(path: str, settings: dict[str, Any]):
    """Trains in a new interpreter and loads the result. fastText 0.10 (fasttext-numpy2) stops with
    "Encountered NaN" now and then when trained in a process that already trained or predicted
    (stale heap memory, we believe); in a fresh process the same file trains cleanly."""
    import fasttext

    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "model.bin")
        done = subprocess.run(
            [sys.executable, "-c", _TRAIN_SCRIPT, path, json.dumps(settings), out],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "training failed"
            )
        return fasttext.load_model(out)


def positive_probability(model, texts: Sequence[str]) -> np.ndarray:
    """P(label 1) for each text, in one batched call."""
    if not texts:
        return np.zeros(0)
    labels, probs = model.predict([normalize(t) for t in texts], k=2)
    out = np.empty(len(texts))
    for i, (names, values) in enumerate(zip(labels, probs, strict=True)):
        found = dict(zip(names, values, strict=True))
        if "__label__1" in found:
            out[i] = found["__label__1"]
        else:
            out[i] = 1.0 - found.get("__label__0", 0.5)
    return np.clip(out, 0.0, 1.0)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Mann-Whitney AUC with ties counted half; nan when only one class is present."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_scores = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def calibration(labels: Sequence[int], scores: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and the reliability table (mean score vs. observed rate per bin)."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    index = np.minimum((s * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_score, rate = float(s[mask].mean()), float(y[mask].mean())
        ece += mask.sum() / len(s) * abs(mean_score - rate)
        table.append({"bin": b, "n": int(mask.sum()), "mean_score": mean_score, "observed": rate})
    return {"ece": float(ece), "bins": table}


def evaluate(labels: Sequence[int], scores: Sequence[float]) -> dict[str, Any]:
    y = np.asarray(labels)
    s = np.asarray(scores)
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "accuracy": float(((s >= 0.5) == (y == 1)).mean()) if len(y) else float("nan"),
        "auc": roc_auc(y, s),
        "calibration": calibration(y, s),
    }


def split_by_group(examples: Sequence[Example], test_share: float, seed: int = 0) -> tuple[list, list]:
    """Train/test split by source: a hash of the group decides, so one source never sits in both."""

    def draw(group: str) -> float:
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    train, test = [], []
    for example in examples:
        (test if draw(example.group) < test_share else train).append(example)
    return train, test


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_artifact(model, root: Path, head: str, metrics: dict[str, Any], trained_on: dict[str, Any]) -> Path:
    """A new version folder under `root/head/` (never overwritten) and `LATEST` pointing at it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    staging = Path(tempfile.mkdtemp(prefix=f".{head}-", dir=_ensure(root / head)))
    model.save_model(str(staging / MODEL_FILE))
    digest = sha256_file(staging / MODEL_FILE)
    version = f"{head}-{stamp}-{digest[:8]}"
    card = {
        "head": head,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "model_sha256": digest,
        "params": TRAIN_PARAMS,
        "metrics": metrics,
        "trained_on": trained_on,
    }
    (staging / CARD_FILE).write_text(json.dumps(card, indent=1, default=str) + "\n")
    final = root / head / version
    staging.rename(final)
    (root / head / LATEST_FILE).write_text(version + "\n")
    return final


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled_relevance_dir() -> Path:
    return Path(str(importlib.resources.files("medcurate.quality") / "models" / BUNDLED_RELEVANCE))


def latest_artifact(root: str | Path, head: str) -> Path | None:
    """The folder `LATEST` names under `root/head`, or None when no model was trained there yet."""
    pointer = Path(root) / head / LATEST_FILE
    if not pointer.is_file():
        return None
    folder = Path(root) / head / pointer.read_text().strip()
    return folder if (folder / MODEL_FILE).is_file() else None


def read_card(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / CARD_FILE).read_text())


def describe(folder: str | Path) -> dict[str, Any]:
    """What the manifest records about a model: head, version, hash and headline metrics, no content."""
    card = read_card(folder)
    metrics = card.get("metrics", {}).get("test", {})
    return {
        "head": card["head"],
        "version": card["version"],
        "sha256": card["model_sha256"],
        "auc": metrics.get("auc"),
        "accuracy": metrics.get("accuracy"),
        "ece": (metrics.get("calibration") or {}).get("ece"),
    }


class TextScorer:
    """Scores texts with the relevance head and the quality head (which may be the same artifact)."""

    def __init__(self, relevance_dir: str | Path, quality_dir: str | Path) -> None:
        import fasttext

        self.relevance = fasttext.load_model(str(Path(relevance_dir) / MODEL_FILE))
        self.quality = (
            self.relevance
            if Path(quality_dir) == Path(relevance_dir)
            else fasttext.load_model(str(Path(quality_dir) / MODEL_FILE))
        )

    def score(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        """(relevance, quality) per text, each the model's probability of the positive label."""
        relevance = positive_probability(self.relevance, texts)
        quality = relevance if self.quality is self.relevance else positive_probability(self.quality, texts)
        return [(float(r), float(q)) for r, q in zip(relevance, quality, strict=True)]
