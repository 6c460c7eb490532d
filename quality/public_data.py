"""Public labelled texts for the bootstrap relevance head and the active-learning benchmark.

Health (label 1): MedQuAD answers from NIH sites (CC BY 4.0), consumer questions rewritten by
doctors (medical_question_pairs) and synthetic clinicians' queries (ASQ-PHI, MIT). Not health (label 0): human-written news and blog article bodies
(article_extraction, MIT; paragraphs) and general synthetic PII sentences (presidio-research, MIT).
They sit in the evaluation data folder beside the repository; nothing is copied into it.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

from medcurate.quality.models import Example

DEFAULT_DATA = Path("../shared/data")
MIN_WORDS = 8


def _words(text: str) -> int:
    return len(text.split())


def medquad_answers(data: Path, limit: int, seed: int) -> list[Example]:
    rows = []
    with gzip.open(data / "web/medquad/medquad.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if _words(row.get("answer") or "") >= MIN_WORDS:
                rows.append(Example(row["answer"], 1, f"medquad:{row['doc_id']}"))
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def doctor_questions(data: Path) -> list[Example]:
    seen: dict[str, Example] = {}
    with open(data / "dedup/medical_question_pairs/mqp.csv", newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 3:
                continue
            for text in row[1:3]:
                if _words(text) >= MIN_WORDS and text not in seen:
                    seen[text] = Example(text, 1, f"mqp:{row[0]}")
    return list(seen.values())


def article_paragraphs(data: Path) -> list[Example]:
    pages = json.loads((data / "web/article_extraction/ground-truth.json").read_text(encoding="utf-8"))
    return [
        Example(paragraph, 0, f"article:{key}")
        for key, page in pages.items()
        for paragraph in (page.get("articleBody") or "").split("\n")
        if _words(paragraph) >= MIN_WORDS
    ]


def masked(text: str, spans: list[dict], label_key: str) -> str:
    """The text with its labelled identifiers replaced by their type: a shipped model must not
    carry their values in its vocabulary, and names alone must not decide the topic."""
    for span in sorted(spans, key=lambda s: s["start"], reverse=True):
        if span.get("start") is not None and span.get("end") is not None:
            text = f"{text[: span['start']]}<{span[label_key].upper()}>{text[span['end'] :]}"
    return text


def general_sentences(data: Path) -> list[Example]:
    rows = json.loads(
        (data / "phi/presidio_research_synth/synth_dataset_v2.json").read_text(encoding="utf-8")
    )
    return [
        Example(
            masked(
                row["full_text"],
                [{**s, "start": s["start_position"], "end": s["end_position"]} for s in row["spans"]],
                "entity_type",
            ),
            0,
            f"presidio:{row.get('template_id')}",
        )
        for row in rows
        if _words(row["full_text"]) >= MIN_WORDS
    ]


def clinician_queries(data: Path) -> list[Example]:
    """Synthetic clinicians' questions about patients (health, and full of identifiers, masked)."""
    out = []
    with open(data / "phi/asq_phi/queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if _words(row["text"]) >= MIN_WORDS:
                out.append(Example(masked(row["text"], row["spans"], "label"), 1, f"asq:{row['id']}"))
    return out


def relevance_examples(
    data: str | Path = DEFAULT_DATA, health_answers: int = 2000, seed: int = 0
) -> list[Example]:
    """Health vs. not-health texts, each tagged with its source group, in a fixed shuffled order."""
    data = Path(data)
    missing = [p for p in ("web/medquad", "web/article_extraction") if not (data / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"public labelled data not found under {data}: {', '.join(missing)}")
    examples = (
        medquad_answers(data, health_answers, seed)
        + doctor_questions(data)
        + clinician_queries(data)
        + article_paragraphs(data)
        + general_sentences(data)
    )
    random.Random(seed).shuffle(examples)
    return examples
