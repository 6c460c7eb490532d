"""The demo job end to end on the bundled corpus: publish, verify, leak-check, publish again."""

import contextlib
import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medcurate.cli import main
from medcurate.privacy.tagger import DEFAULT_MODEL
from medcurate.schemas.sample import interleaving_problems, table_to_samples
from medcurate.warehouse.publish import read_manifest

REPO = Path(__file__).resolve().parents[1]
FAKE_PHI = json.loads((REPO / "sample_data" / "fake_phi.json").read_text())
BAD_FILES = {
    "truncated.jpg",
    "crawl-truncated.warc.gz",
    "legacy_export.txt",
    "broken_bundle.json",
}

pytestmark = pytest.mark.slow


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def shard_strings(path: Path) -> str:
    """Every string a shard holds (text, URIs, metadata, reasons), decompressed, as one blob."""
    table = pq.read_table(path).drop_columns(["image_bytes", "images"])
    return json.dumps(table.to_pylist(), default=str)


def run_demo(out: Path, *extra: str) -> int:
    """`medcurate run` on the demo config, from the repository root as `make demo` runs it."""
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        return main(["run", "--config", "configs/demo.yaml", "--output", str(out), *extra])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory):
    """Two demo runs, with every log record (DEBUG included) and all console output captured."""
    out = tmp_path_factory.mktemp("out")
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
            codes = [run_demo(out), run_demo(out)]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return out, codes, logs.getvalue()


def test_both_runs_succeed_and_publish_chained_versions(demo_runs):
    out, codes, logs = demo_runs
    assert codes == [0, 0]
    assert "prism" not in logs.lower(), "the local runner must never try to fetch the Prism binary"
    dataset = out / "medcurate-sample"
    assert (dataset / "LATEST").read_text().strip() == "v0002"
    assert read_manifest(str(dataset / "v0002")).parent == "v0001"
    assert read_manifest(str(dataset / "v0001")).parent is None


def test_duckdb_row_count_and_shard_hashes_match_the_manifest(demo_runs):
    out, _, _ = demo_runs
    version = out / "medcurate-sample" / "v0001"
    manifest = read_manifest(str(version))
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{version}/data/*.parquet')").fetchall()[0][0]
    assert count == manifest.rows > 0
    for shard in manifest.shards:
        assert hashlib.sha256((version / shard.path).read_bytes()).hexdigest() == shard.sha256
    counts = manifest.counts
    assert counts.balanced, counts
    assert counts.read == counts.published + sum(counts.dropped.values()) + sum(counts.dead_lettered.values())
    # The learned PHI tagger the run applied is named by its hashes.
    shipped = json.loads((DEFAULT_MODEL / "metadata.json").read_text())
    assert manifest.models["deid_tagger"]["model_sha256"] == shipped["model_sha256"]


def test_every_stage_left_its_mark(demo_runs):
    out, _, _ = demo_runs
    rows = duckdb.sql(
        f"SELECT source_kind, modality, language, dedup_cluster, review_status, redactions "
        f"FROM read_parquet('{out}/medcurate-sample/v0001/data/*.parquet')"
    ).fetchall()
    assert {r[0] for r in rows} == {"web", "image", "clinical", "article"}
    assert {r[1] for r in rows} == {"text", "image", "multimodal"}
    assert all(r[2] == "en" for r in rows if r[1] == "text")
    assert all(r[3] for r in rows)
    assert {r[4] for r in rows} <= {"pending", "not_required"}
    assert any(r[5] for r in rows), "no redaction recorded anywhere"
    dropped = read_manifest(str(out / "medcurate-sample" / "v0001")).counts.dropped
    assert any(key.startswith("dedup/") for key in dropped), dropped
    assert "quality/language_not_allowed" in dropped


def test_bad_files_are_dead_letters_with_reasons(demo_runs):
    out, _, _ = demo_runs
    letters = [
        json.loads(line)
        for path in (out / "dead_letter" / "medcurate-sample").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    failed_files = {Path(letter["source_uri"].split("#")[0]).name for letter in letters}
    assert failed_files >= BAD_FILES
    assert all(letter["reason"] and letter["stage"] for letter in letters)


def test_no_fake_phi_in_any_output_or_log(demo_runs):
    out, _, logs = demo_runs
    blobs = {"logs": logs}
    for path in out.rglob("*"):
        if path.is_file():
            blobs[str(path)] = (
                shard_strings(path) if path.suffix == ".parquet" else path.read_bytes().decode("latin-1")
            )
    leaks = [
        (value, where)
        for value in FAKE_PHI
        for where, blob in blobs.items()
        if phi_pattern(value).search(blob)
    ]
    assert not leaks


def phi_pattern(value: str) -> re.Pattern[str]:
    """A PHI value anywhere, case aside; a number only where no digit adjoins it (inside a longer
    digit run, as in a log's nanosecond timestamp, it is another number)."""
    before = r"(?<![0-9])" if value[:1].isdigit() else ""
    after = r"(?![0-9])" if value[-1:].isdigit() else ""
    return re.compile(before + re.escape(value) + after, re.IGNORECASE)


def test_a_phi_number_is_found_unless_it_is_part_of_a_longer_number() -> None:
    pattern = phi_pattern("70263")
    assert pattern.search("zip 70263.") and pattern.search("MRN70263x")
    assert not pattern.search("nanos: 370263907")
    assert phi_pattern("Quillby Ashdown").search("seen by QUILLBY ASHDOWN today")


def published_samples(out: Path, version: str = "v0001") -> list[dict]:
    folder = out / "medcurate-sample" / version / "data"
    return [row for path in sorted(folder.glob("*.parquet")) for row in table_to_samples(pq.read_table(path))]


def test_published_images_carry_no_metadata(demo_runs):
    out, _, _ = demo_runs
    images = duckdb.sql(
        f"SELECT image_bytes FROM read_parquet('{out}/medcurate-sample/v0001/data/*.parquet') WHERE modality = 'image'"
    ).fetchall()
    parts = [image for row in published_samples(out) for image in row["images"] or [] if image is not None]
    assert len(images) >= 2 and len(parts) >= 5
    for data in [row[0] for row in images] + parts:
        image = Image.open(io.BytesIO(data))
        assert not image.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)


def test_second_run_left_the_first_version_untouched(demo_runs):
    out, _, _ = demo_runs
    version = out / "medcurate-sample" / "v0001"
    manifest = read_manifest(str(version))
    assert {s.path: s.sha256 for s in manifest.shards} == {
        k: v for k, v in digest(version).items() if k.startswith("data/")
    }


def test_append_style_run_skips_what_is_already_published(demo_runs):
    out, _, _ = demo_runs
    assert run_demo(out, "--dataset", "appended", "--set", "dedup.against_published=[medcurate-sample]") == 0
    published = {
        row[0]
        for row in duckdb.sql(
            f"SELECT exact_hash FROM read_parquet('{out}/medcurate-sample/v0002/data/*.parquet')"
        ).fetchall()
    }
    appended = read_manifest(str(out / "appended" / "v0001"))
    new = duckdb.sql(f"SELECT exact_hash FROM read_parquet('{out}/appended/v0001/data/*.parquet')").fetchall()
    assert not published & {row[0] for row in new}
    assert appended.counts.dropped["dedup/exact_duplicate"] >= len(published)
    assert appended.counts.balanced


def test_versions_and_query_commands(demo_runs, capsys):
    out, _, _ = demo_runs
    assert main(["versions", "--output", str(out), "--dataset", "medcurate-sample"]) == 0
    listing = capsys.readouterr().out
    assert "v0001" in listing and "v0002" in listing
    sql = "SELECT count(*) AS n FROM samples"
    assert (
        main(["query", sql, "--output", str(out), "--dataset", "medcurate-sample", "--format", "json"]) == 0
    )
    latest_rows = read_manifest(str(out / "medcurate-sample" / "v0002")).rows
    assert json.loads(capsys.readouterr().out) == {"n": latest_rows}
    assert (
        main(["query", "SELECT nope FROM samples", "--output", str(out), "--dataset", "medcurate-sample"])
        == 2
    )
    assert "nope" in capsys.readouterr().err


def test_every_row_follows_the_interleaved_convention(demo_runs):
    out, _, _ = demo_runs
    rows = published_samples(out)
    multimodal = [row for row in rows if row["modality"] == "multimodal"]
    assert {row["source_kind"] for row in multimodal} == {"web", "article", "image"}
    for row in rows:
        assert interleaving_problems(row) == [], row["source_uri"]
        if row["modality"] != "multimodal":
            assert row["texts"] is None and row["images"] is None
            continue
        assert len(row["texts"]) == len(row["images"]) == len(row["image_meta"])
        for text, image, meta in zip(row["texts"], row["images"], row["image_meta"], strict=True):
            assert (text is None) != (image is None)
            if image is not None:
                decoded = Image.open(io.BytesIO(image))
                decoded.load()
                assert decoded.size == (meta["width"], meta["height"])
                assert meta["format"] == decoded.format.lower() and meta["bytes"] == len(image)
                assert meta["phash"] is not None and meta["source_ref"]
        assert row["text"] == "\n\n".join(t for t in row["texts"] if t is not None)


def test_page_article_and_study_keep_their_order(demo_runs):
    out, _, _ = demo_runs
    by_source = {Path(row["source_uri"].split("#")[0]).name: row for row in published_samples(out)}
    page = by_source["heart-failure.html"]
    positions = [i for i, image in enumerate(page["images"]) if image is not None]
    assert positions == [3, 6]
    assert page["texts"][4] == page["image_meta"][3]["caption"]  # figcaption right after its image
    assert page["texts"][2].startswith("The main symptoms")
    assert page["image_meta"][6]["caption"].startswith("Chest X-ray of")  # alt text, de-identified
    assert "parts_dropped" in page["metadata"]
    article = by_source["example-article.nxml"]
    refs = [article["image_meta"][i]["source_ref"] for i, im in enumerate(article["images"]) if im]
    assert refs == ["PMC0000042#f2", "PMC0000042#f1"]
    study = by_source["ct_study"]
    assert [im is not None for im in study["images"]] == [True, True, False]
    assert study["texts"][2].startswith("Findings:")


def test_webdataset_export_round_trips_byte_identical(demo_runs, tmp_path):
    import webdataset

    out, _, _ = demo_runs
    target = tmp_path / "wds"
    args = ["--output", str(out), "--dataset", "medcurate-sample"]
    assert main(["export", "webdataset", "v0001", str(target), *args]) == 0
    rows = {row["id"]: row for row in published_samples(out)}
    shards = sorted(str(p) for p in target.glob("*.tar"))
    read = list(webdataset.WebDataset(shards, shardshuffle=False))
    assert len(read) == len(rows)
    images = 0
    for sample in read:
        assert "." not in sample["__key__"]
        row = rows[sample["__key__"]]
        record = json.loads(sample["json"])
        assert record["texts"] == row["texts"] and record["text"] == row["text"]
        files = {k: v for k, v in sample.items() if not k.startswith("__") and k != "json"}
        if row["images"] is not None:
            expected = {i: image for i, image in enumerate(row["images"]) if image is not None}
        else:
            expected = {0: row["image_bytes"]} if row["image_bytes"] is not None else {}
        assert {int(name.split(".")[0]): data for name, data in files.items()} == expected
        images += len(expected)
    assert images >= 7
    # The same version exports to the same bytes.
    again = tmp_path / "again"
    assert main(["export", "webdataset", str(out / "medcurate-sample" / "v0001"), str(again)]) == 0
    assert digest(again) == digest(target)


def test_hugging_face_datasets_reads_the_shards_as_they_are(demo_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    out, _, _ = demo_runs
    files = sorted(str(p) for p in (out / "medcurate-sample" / "v0001" / "data").glob("*.parquet"))
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "c"))
    rows = {row["id"]: row for row in published_samples(out)}
    assert len(loaded) == len(rows)
    for record in loaded:
        row = rows[record["id"]]
        assert record["texts"] == row["texts"] and record["images"] == row["images"]
        assert dict((p["key"], p["value"]) for p in record["metadata"]) == row["metadata"]


def test_diff_reports_what_a_stricter_run_removed_and_why(demo_runs, capsys):
    """A third run with a stricter quality rule: `medcurate diff` names the removed samples' reason,
    and the trainer loader reads the new version (verified chunk by chunk) with every sample once."""
    out, _, _ = demo_runs
    assert run_demo(out, "--set", "quality.min_words=60") == 0
    capsys.readouterr()
    args = ["--output", str(out), "--dataset", "medcurate-sample", "--format", "json"]
    assert main(["diff", "v0002", "v0003", *args]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["removed"] > 0 and report["added"] == 0 and report["changed"] == 0
    assert {row["reason"] for row in report["rows"]} == {"quality/too_short"}
    assert main(["diff", "v0003", "v0002", *args]) == 0
    back = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert back["added"] == report["removed"]
    assert all(row["reason"] == "left out of v0003: quality/too_short" for row in back["rows"])

    from medcurate.warehouse.loader import DatasetReader

    version_dir = str(out / "medcurate-sample" / "v0003")
    manifest = read_manifest(version_dir)
    assert all(shard.chunk_sha256 for shard in manifest.shards)
    ids = [
        i
        for rank in range(2)
        for batch in DatasetReader(version_dir, ["id"], rank=rank, world_size=2, batch_size=4)
        for i in batch.column("id").to_pylist()
    ]
    assert len(ids) == len(set(ids)) == manifest.rows
