"""The in-process core and the Beam transform give identical clusters on every dev set.

Dev sets from the shared evaluation data: bib_records (each subject category, record text =
title, author surnames, year, volume, pages), medical_question_pairs (every distinct question) and
MedQuAD answers (the first 3,000 non-empty ones, to keep the Beam run short). Several settings,
so that each verification rule is exercised on both paths. Images: the DICOM test files of the
pydicom wheel (undecodable files included) and the first 1,000 pneumoniamnist PNGs.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from medcurate.dedup.beam import assign_clusters
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.core import assign_image_clusters, assign_text_clusters
from medcurate.schemas.sample import new_sample

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BIB = DedupConfig(threshold=0.5, shingle="char", ngram=5, num_perm=128)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared evaluation data absent: {path}")
    return path


def _bib(category: str) -> list[str]:
    path = _need(SHARED / "dedup" / "bib_records" / category / "records_pre_merged.csv")
    texts = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            authors = " ".join(a.split(",")[0].strip() for a in row["author"].split(" and ") if a.strip())
            fields = (row["title"], authors, row["year"], row.get("volume", ""), row.get("pages", ""))
            texts.append(" ".join(f for f in fields if f))
    return texts


def _mqp() -> list[str]:
    path = _need(SHARED / "dedup" / "medical_question_pairs" / "mqp.csv")
    with path.open(newline="") as handle:
        return sorted({text for row in csv.reader(handle) for text in row[1:3]})


def _medquad(limit: int = 3000) -> list[str]:
    path = _need(SHARED / "web" / "medquad" / "medquad.jsonl.gz")
    answers = []
    with gzip.open(path, "rt") as handle:
        for row in map(json.loads, handle):
            if row["answer"].strip():
                answers.append(row["answer"])
            if len(answers) == limit:
                break
    return answers


def _both(texts: list[str], config: DedupConfig) -> None:
    ids = [f"r{i:06d}" for i in range(len(texts))]
    local = assign_text_clusters(ids, texts, config)
    samples = [
        new_sample(id=i, source_kind="web", modality="text", source_uri=f"dev#{i}", text=t)
        for i, t in zip(ids, texts, strict=True)
    ]
    beam = assign_clusters(samples, config)
    assert local == beam
    # Not trivially equal: some records are clustered together.
    assert len({row["cluster"] for row in local}) < len(texts)


DEV_SETS = [
    (
        "cytology_screening",
        lambda: _bib("cytology_screening"),
        [
            BIB,
            BIB.model_copy(update={"boilerplate": True, "notices": True}),
            BIB.model_copy(update={"citations": True, "numbers_missing": 1, "numbers_year_slack": 1}),
        ],
    ),
    (
        "haematology",
        lambda: _bib("haematology"),
        [
            BIB.model_copy(update={"verify": "containment"}),
            BIB.model_copy(update={"notices": True, "notice_scope": None}),
        ],
    ),
    (
        "special_cases",
        lambda: _bib("special_cases"),
        [BIB, BIB.model_copy(update={"numbers_agree": None, "numbers_missing": 1})],
    ),
    ("medical_question_pairs", _mqp, [BIB]),
    ("medquad", _medquad, [DedupConfig(threshold=0.7, shingle="word", ngram=3, boilerplate=True)]),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,load,configs", DEV_SETS, ids=[d[0] for d in DEV_SETS])
def test_in_process_and_beam_paths_give_identical_clusters(name, load, configs) -> None:
    texts = load()
    for config in configs:
        _both(texts, config)


def _pydicom_files() -> list[Path]:
    """The DICOM test files of the pydicom wheel (pydicom-data's larger ones would take minutes)."""
    import pydicom

    return sorted((Path(pydicom.__file__).resolve().parent / "data" / "test_files").rglob("*.dcm"))


def _pneumoniamnist_files(limit: int = 1000) -> list[Path]:
    return sorted(_need(SHARED / "images" / "pneumoniamnist" / "png").glob("*.png"))[:limit]


@pytest.mark.slow
@pytest.mark.parametrize("load", [_pydicom_files, _pneumoniamnist_files], ids=["pydicom", "pneumoniamnist"])
def test_in_process_and_beam_paths_give_identical_image_clusters(load) -> None:
    import logging

    logging.getLogger("pydicom").setLevel(logging.CRITICAL)  # malformed test files log tracebacks
    files = load()
    ids = [str(path) for path in files]
    local = assign_image_clusters(ids, (path.read_bytes() for path in files), DedupConfig())
    samples = [
        new_sample(id=i, source_kind="image", modality="image", source_uri=i, image_bytes=path.read_bytes())
        for i, path in zip(ids, files, strict=True)
    ]
    assert local == assign_clusters(samples, DedupConfig())
    assert len({row["cluster"] for row in local}) < len(files)
