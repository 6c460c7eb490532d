"""After the demo run: every text sample is scored, the manifest names the models, and the run
report opens in headless Chromium (Debian's `chromium` + `chromium-driver`) with its charts drawn."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import duckdb
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from medcurate.cli import main
from medcurate.quality.report import REPORT_FILE

CHARTS = ("funnel", "phi", "dedup", "language", "quality", "relevance", "images", "review")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(demo_output: Path) -> dict:
    out = demo_output
    (version,) = sorted((out / "medcurate-sample").glob("v*"))
    manifest = json.loads((version / "manifest.json").read_text())
    report = out / "reports" / "medcurate-sample" / manifest["run_id"] / REPORT_FILE
    return {"out": out, "version": version, "manifest": manifest, "report": report}


def test_every_text_sample_is_scored_and_models_are_named(demo) -> None:
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT quality_score, relevance_score, quality_signals FROM '{demo['version']}/data/*.parquet' "
            "WHERE modality = 'text'"
        )
        .fetchall()
    )
    assert rows
    for quality, relevance, signals in rows:
        assert 0 <= quality <= 1 and 0 <= relevance <= 1
        # Filter statistics are stored (a map, or key/value pairs in later schema versions).
        keys = [pair["key"] for pair in signals] if isinstance(signals, list) else list(signals)
        assert any(key.startswith("gopher.") for key in keys)
    models = demo["manifest"]["models"]
    for head in ("relevance_model", "quality_model"):
        assert models[head]["version"] and len(models[head]["sha256"]) == 64


def test_report_is_self_contained_and_lists_every_drop_reason(demo) -> None:
    page = demo["report"].read_text()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page), "the report must not load anything remote"
    assert "<script" not in page
    for reason in demo["manifest"]["counts"]["dropped"]:
        assert reason in page
    assert 'href="../../../medcurate-sample/v0001/validation/results.json"' in page


def test_report_rebuilds_from_the_command(demo, capsys) -> None:
    demo["report"].unlink()
    assert main(["report", demo["manifest"]["run_id"], "--output", str(demo["out"])]) == 0
    assert demo["report"].is_file()


def test_charts_draw_in_headless_chromium(demo, tmp_path: Path) -> None:
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(demo["report"].resolve().as_uri())
        figures = {f.get_attribute("id"): f for f in driver.find_elements(By.CSS_SELECTOR, "figure.chart")}
        assert set(figures) == set(CHARTS)
        for chart_id, figure in figures.items():
            svg = figure.find_element(By.TAG_NAME, "svg")
            assert svg.size["width"] > 200 and svg.size["height"] > 100, chart_id
            driver.execute_script("arguments[0].scrollIntoView()", figure)
            shot = Image.open(io.BytesIO(svg.screenshot_as_png)).convert("RGB")
            (tmp_path / f"{chart_id}.png").write_bytes(svg.screenshot_as_png)
            colours = shot.getcolors(maxcolors=1 << 16) or []
            # Axes, labels and bars: a drawn chart has many colours and much non-white area.
            assert len(colours) > 20, chart_id
            ink = sum(count for count, rgb in colours if sum(rgb) < 600)
            assert ink > 0.01 * shot.width * shot.height, chart_id
        bars = driver.find_elements(By.CSS_SELECTOR, "#funnel svg path, #funnel svg rect")
        assert len(bars) >= len(demo["manifest"]["counts"]["dropped"]) + 2
    finally:
        driver.quit()


def test_training_reads_the_published_texts(demo, capsys) -> None:
    """`medcurate quality train` joins verdicts to the texts of every published version."""
    from medcurate.quality.train import published_texts

    texts = published_texts(str(demo["out"]), "medcurate-sample")
    ids = (
        duckdb.connect()
        .execute(f"SELECT id FROM '{demo['version']}/data/*.parquet' WHERE modality = 'text'")
        .fetchall()
    )
    assert set(texts) == {row[0] for row in ids}
    assert all(text and uri for text, uri in texts.values())
    # Without pulled verdicts the command says what to do first.
    assert main(["quality", "train", "--set", f"publish.output_dir={demo['out']}"]) == 2
    assert "medcurate review pull" in capsys.readouterr().err


def test_report_shows_agreement_between_distinct_reviewers() -> None:
    from medcurate.quality.report import agreement_table

    def answer(sample: str, reviewer: int, verdict: str, annotation: int) -> dict:
        return {
            "sample_id": sample,
            "reviewer_id": reviewer,
            "annotation_id": annotation,
            "created_at": f"2026-03-01T10:00:{annotation:02d}Z",
            "verdict": verdict,
        }

    agreeing = [
        answer(s, r, v, i)
        for i, (s, r, v) in enumerate(
            [("a", 1, "accept"), ("a", 2, "accept"), ("b", 1, "reject"), ("b", 2, "reject")]
        )
    ]
    assert "<td>verdict</td><td>1.000</td><td>nominal</td><td>2</td>" in agreement_table(agreeing)
    # One reviewer's replayed answer is not a second reviewer.
    alone = [answer("a", 1, "accept", 1), answer("a", 1, "accept", 2)]
    assert "No sample has answers from two reviewers yet" in agreement_table(alone)
