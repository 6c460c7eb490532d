"""The Beam transform and the CLI on small inputs: drops, clusters, keepers, images."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from medcurate.dedup import cli as dedup_cli
from medcurate.dedup.beam import (
    DeduplicateSamples,
    assign_clusters,
)
from medcurate.dedup.clusters import ConnectedComponents
from medcurate.dedup.config import DedupConfig
from medcurate.pipelines.stage import DROPS, SAMPLES
from medcurate.schemas.sample import new_sample

LEAFLET = (
    "Influenza is a contagious respiratory illness caused by influenza viruses that infect the nose, "
    "throat and sometimes the lungs. It can cause mild to severe illness, and at times can lead to death."
)
TEXTS = {
    "a": LEAFLET,
    "b": LEAFLET.upper().replace(" ", "  "),  # exact duplicate after normalisation
    "c": LEAFLET.replace("mild", "moderate"),  # near duplicate, and the longest
    "d": "Type 2 diabetes is a chronic condition in which the body does not use insulin properly.",
    "e": "A broken wrist is usually treated with a cast for six weeks, then physiotherapy.",
}
CONFIG = DedupConfig(threshold=0.7, shingle="word", ngram=3)


def _text_samples(texts: dict[str, str], quality: dict[str, float] | None = None) -> list[dict]:
    return [
        new_sample(
            id=key,
            source_kind="web",
            modality="text",
            source_uri=f"mem://{key}",
            text=text,
            quality_score=(quality or {}).get(key),
        )
        for key, text in texts.items()
    ]


def _summary(sample: dict) -> tuple:
    return (
        sample["id"],
        sample["dedup_cluster"],
        sample["dedup_cluster_size"],
        sample["exact_hash"] is not None,
    )


@pytest.mark.slow
def test_transform_keeps_one_per_cluster_and_drops_the_rest_with_reasons() -> None:
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        outputs = pipeline | beam.Create(_text_samples(TEXTS)) | DeduplicateSamples(CONFIG)
        assert_that(
            outputs[SAMPLES] | beam.Map(_summary),
            equal_to([("c", "c", 3, True), ("d", "d", 1, True), ("e", "e", 1, True)]),
        )
        assert_that(
            outputs[DROPS] | beam.Map(lambda d: (d["stage"], d["reason"], d["sample_id"], d["source_uri"])),
            equal_to(
                [("dedup", "near_duplicate", "a", "mem://a"), ("dedup", "near_duplicate", "b", "mem://b")]
            ),
            label="drops",
        )


@pytest.mark.slow
def test_keeper_prefers_quality_and_exact_twins_of_the_keeper_drop_as_exact() -> None:
    rows = assign_clusters(_text_samples(TEXTS, quality={"a": 0.9, "b": 0.5, "c": 0.5}), CONFIG)
    assert [(r["id"], r["cluster"], r["keep"]) for r in rows] == [
        ("a", "a", True),
        ("b", "a", False),
        ("c", "a", False),
        ("d", "d", True),
        ("e", "e", True),
    ]
    # Reversed input order gives the same answer.
    again = assign_clusters(
        list(reversed(_text_samples(TEXTS, quality={"a": 0.9, "b": 0.5, "c": 0.5}))), CONFIG
    )
    assert sorted(map(json.dumps, again)) == sorted(map(json.dumps, rows))


@pytest.mark.slow
def test_known_published_hashes_are_dropped_and_do_not_cluster() -> None:
    from medcurate.dedup.normalize import exact_text_hash

    rows = assign_clusters(_text_samples(TEXTS), CONFIG, known_exact_hashes={exact_text_hash(TEXTS["d"])[0]})
    assert {r["id"]: r["keep"] for r in rows} == {"a": False, "b": False, "c": True, "d": False, "e": True}


TEMPLATE = (
    "How is {0} inherited? {0} is inherited in an autosomal recessive pattern, which means both copies "
    "of the gene in each cell have mutations. The parents of an individual with an autosomal recessive "
    "condition each carry one copy of the mutated gene, but they typically do not show signs and "
    "symptoms of the condition. When two carriers have children, each child has a one in four chance "
    "of being affected, a one in two chance of being an unaffected carrier like the parents, and a one "
    "in four chance of inheriting two working copies of the gene. Genetic counselling can help "
    "families understand these risks, and testing of relatives may be offered once the variants in "
    "the family are known. More information is available from patient support groups."
)
SUBJECTS = [
    "Fabry disease",
    "Krabbe leukodystrophy",
    "Pompe myopathy",
    "Gaucher syndrome",
    "Canavan disease",
    "Wolman disease",
    "Farber lipogranulomatosis",
    "Sandhoff disease",
    "Tay-Sachs disease",
    "Niemann-Pick type C",
    "Alexander disease",
    "Zellweger syndrome",
]


@pytest.mark.slow
def test_templated_texts_about_different_subjects_stay_apart_and_a_republished_leaflet_merges() -> None:
    texts = {f"t{i:02d}": TEMPLATE.format(subject) for i, subject in enumerate(SUBJECTS)}
    texts |= {"leaflet": LEAFLET * 2, "leaflet-edited": (LEAFLET * 2).replace("sometimes", "often", 1)}
    config = DedupConfig(boilerplate=True)  # off by default: it is for web crawls
    clusters = {r["id"]: r["cluster"] for r in assign_clusters(_text_samples(texts), config)}
    assert clusters["leaflet-edited"] == clusters["leaflet"]
    assert len({clusters[key] for key in texts if key.startswith("t")}) == len(SUBJECTS)
    # Without boilerplate awareness MinHash alone takes them for near-duplicates.
    plain = assign_clusters(_text_samples(texts), config.model_copy(update={"boilerplate": False}))
    assert len({r["cluster"] for r in plain if r["id"].startswith("t")}) < len(SUBJECTS) / 2


@pytest.mark.slow
def test_exact_only_keeps_near_duplicates() -> None:
    rows = assign_clusters(_text_samples(TEXTS), CONFIG.model_copy(update={"near": False}))
    assert {r["id"]: (r["cluster"], r["keep"]) for r in rows} == {
        "a": ("a", True),
        "b": ("a", False),
        "c": ("c", True),
        "d": ("d", True),
        "e": ("e", True),
    }


@pytest.mark.slow
def test_connected_components_of_a_long_chain_and_separate_pieces() -> None:
    chain = [(f"n{i:02d}", f"n{i + 1:02d}") for i in range(30)]
    edges = [*reversed(chain), ("x", "y"), ("z", "y")]
    expected = [(f"n{i:02d}", "n00") for i in range(31)] + [("x", "x"), ("y", "x"), ("z", "x")]
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        assert_that(pipeline | beam.Create(edges) | ConnectedComponents(rounds=8), equal_to(expected))


def _png(pixels: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    dedup_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, [])


@pytest.mark.slow
def test_cli_text_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": key, "text": text}) + "\n" for key, text in TEXTS.items()))
    out = tmp_path / "out.jsonl"
    argv = ["dedup", "text", "--input", str(source), "--output", str(out), "--threshold", "0.7"]
    assert _run_cli([*argv, "--shingle", "word", "--ngram", "3", "--num-perm", "128"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == list(TEXTS)
    clusters = {r["id"]: r["cluster"] for r in rows}
    assert clusters["a"] == clusters["b"] == clusters["c"] != clusters["d"] != clusters["e"]
    for cluster in set(clusters.values()):
        assert sum(r["keep"] for r in rows if r["cluster"] == cluster) == 1


@pytest.mark.slow
def test_cli_images_finds_png_and_jpeg_twins(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:96] / 96.0
    blobs = sum(
        np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.05 * r)) for cy, cx, r in rng.uniform(0.1, 0.9, (5, 3))
    )
    scan = (255 * blobs / blobs.max()).astype(np.uint8)
    noise = rng.integers(0, 255, size=(96, 96), dtype=np.uint8)
    files = {"scan.png": _png(scan), "scan.jpg": _png(scan, "JPEG", quality=70), "noise.png": _png(noise)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    out = tmp_path / "out.jsonl"
    assert _run_cli(["dedup", "images", *(str(tmp_path / n) for n in files), "--output", str(out)]) == 0
    rows = {Path(r["id"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["scan.png"]["cluster"] == rows["scan.jpg"]["cluster"] != rows["noise.png"]["cluster"]
    assert rows["scan.png"]["keep"] != rows["scan.jpg"]["keep"]
    assert rows["noise.png"]["keep"]


@pytest.mark.slow
def test_cli_images_local_and_beam_runners_write_the_same_lines(tmp_path: Path) -> None:
    """Both paths, also for undecodable files (byte-identical copies only) and a repeated path."""
    rng = np.random.default_rng(5)
    scan = rng.integers(0, 255, size=(64, 64), dtype=np.uint8)
    flat = np.full((64, 64), 80, dtype=np.uint8)
    files = {
        "scan.png": _png(scan),
        "scan.jpg": _png(scan, "JPEG", quality=90),
        "flat.png": _png(flat),
        "flat_copy.png": _png(flat),
        "broken.png": b"not an image, truncated upload",
        "broken_copy.png": b"not an image, truncated upload",
        "broken_other.png": b"not an image, another truncated upload",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in files]
    outputs = {}
    for runner in ("local", "beam"):
        out = tmp_path / f"{runner}.jsonl"
        assert _run_cli(["dedup", "images", *paths, "--output", str(out), "--runner", runner]) == 0
        outputs[runner] = out.read_text()
    assert outputs["local"] == outputs["beam"]
    rows = {Path(r["id"]).name: r for r in map(json.loads, outputs["local"].splitlines())}
    cluster = {name: row["cluster"] for name, row in rows.items()}
    assert cluster["scan.png"] == cluster["scan.jpg"] != cluster["flat.png"] == cluster["flat_copy.png"]
    assert cluster["broken.png"] == cluster["broken_copy.png"] != cluster["broken_other.png"]
    assert sum(row["keep"] for row in rows.values()) == 4
    with pytest.raises(dedup_cli.CliError, match="duplicate input"):
        _run_cli(["dedup", "images", paths[0], paths[0], "--output", str(tmp_path / "o.jsonl")])


def _bib_clusters_without_and_with(tmp_path: Path, records: dict[str, str], flags: list[str]) -> dict:
    """Clusters of bibliographic record texts from the command (char 5-grams at 0.5, no digit run
    of the smaller set missing), without and with `flags`."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in records.items()))
    clusters = {}
    for extra in ([], flags):
        out = tmp_path / "out.jsonl"
        argv = ["dedup", "text", "--input", str(source), "--output", str(out), "--threshold", "0.5"]
        argv += ["--shingle", "char", "--ngram", "5", "--numbers-missing", "0", *extra]
        assert _run_cli(argv) == 0
        clusters[bool(extra)] = [row["cluster"] for row in map(json.loads, out.read_text().splitlines())]
    return clusters


def test_cli_text_citations_compare_cleaned_records(tmp_path: Path) -> None:
    """An export's annotation and abbreviated page range keep two records of one article apart,
    unless `--citations` cleans them first."""
    records = {
        "a": "Widget counts in Northfield: a cohort study. Quill Marsh 2019 12 1234-45",
        "b": "Widget counts in Northfield: a cohort study. [Review] [41 refs] Quill Marsh 2019 12 1234-1245",
        "c": "Gadget counts in Southfield: a cohort study. Quill Marsh 2019 12 1250-61",
    }
    clusters = _bib_clusters_without_and_with(tmp_path, records, ["--citations"])
    assert len(set(clusters[False])) == 3
    assert clusters[True][0] == clusters[True][1] != clusters[True][2]


def test_cli_text_year_slack_joins_online_first_and_print_years(tmp_path: Path) -> None:
    """One article indexed under its online-first and its print year (same volume and pages) is one
    record with `--numbers-year-slack 1`; a record two years off stays apart."""
    records = {
        "a": "Widget counts in Northfield: a cohort study. Quill Marsh 2019 12 1234-1245",
        "b": "Widget counts in Northfield: a cohort study. Quill Marsh 2020 12 1234-1245",
        "c": "Widget counts in Northfield: a cohort study. Quill Marsh 2017 12 1234-1245",
    }
    clusters = _bib_clusters_without_and_with(tmp_path, records, ["--numbers-year-slack", "1"])
    assert len(set(clusters[False])) == 3
    assert clusters[True][0] == clusters[True][1] != clusters[True][2]


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1}\n')
    with pytest.raises(dedup_cli.CliError, match="needs `id` and a string `text`"):
        _run_cli(["dedup", "text", "--input", str(source), "--output", str(tmp_path / "o.jsonl")])


def test_cli_text_rejects_duplicate_ids(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "x1", "text": "one"}) + "\n" + json.dumps({"id": "x1", "text": "two"}) + "\n"
    )
    for runner in ("local", "beam"):
        with pytest.raises(dedup_cli.CliError, match=r"in\.jsonl:2: duplicate id"):
            _run_cli(
                [
                    "dedup",
                    "text",
                    "--input",
                    str(source),
                    "--output",
                    str(tmp_path / "o.jsonl"),
                    "--runner",
                    runner,
                ]
            )


@pytest.mark.slow
def test_cli_local_and_beam_runners_write_the_same_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    texts = {**TEXTS, **{f"t{i:02d}": TEMPLATE.format(subject) for i, subject in enumerate(SUBJECTS)}}
    source.write_text("".join(json.dumps({"id": key, "text": text}) + "\n" for key, text in texts.items()))
    outputs = {}
    for runner in ("local", "beam"):
        out = tmp_path / f"{runner}.jsonl"
        argv = ["dedup", "text", "--input", str(source), "--output", str(out), "--threshold", "0.7"]
        assert _run_cli([*argv, "--shingle", "word", "--ngram", "3", "--runner", runner]) == 0
        outputs[runner] = out.read_text()
    assert outputs["local"] == outputs["beam"]
    assert [json.loads(line)["id"] for line in outputs["local"].splitlines()] == list(texts)


def test_cli_text_local_path_imports_neither_beam_nor_datasketch(tmp_path: Path) -> None:
    """The whole command's start-up counts: the in-process path stays off Beam and datasketch."""
    import subprocess
    import sys

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": key, "text": text}) + "\n" for key, text in TEXTS.items()))
    script = (
        "import sys\n"
        "from medcurate.cli import main\n"
        f"code = main(['dedup', 'text', '--input', {str(source)!r}, '--output', {str(tmp_path / 'o.jsonl')!r}])\n"
        "heavy = sorted(m for m in ('apache_beam', 'datasketch') if m in sys.modules)\n"
        "print(heavy)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
