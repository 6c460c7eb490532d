"""Ingestion benchmark: HTML extraction F1 against gold article bodies, records/s, robustness.

    .venv/bin/python benchmarks/ingest_eval.py [--quick]

1. Token-shingle F1 (the metric of ../shared/data/web/article_extraction/evaluate.py, imported
   from there) of medcurate's extraction beside trafilatura's default `extract()`, other
   trafilatura settings and resiliparse (when installed), on the same pages in the same run.
2. Records/s of `read_source` on WARC, images and DICOM; multimodal WARC records (the same pages
   with figures whose images are records of the WARC) beside the text-only records.
3. Robustness: every file of the shared WARC, image and FHIR sets and the pydicom(-data) wheels:
   samples, dead letters by reason.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.sources import expand_inputs, read_source
from medcurate.pipelines.ingest.web import decode_html, extract_html
from medcurate.schemas.events import DeadLetter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ARTICLES = DATA / "web" / "article_extraction"


def _load_metric() -> Callable[..., dict]:
    spec = importlib.util.spec_from_file_location("article_evaluate", ARTICLES / "evaluate.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.evaluate


def _ours(config: IngestConfig) -> Callable[[bytes, str], str]:
    def extract(raw: bytes, url: str) -> str:
        html, _ = decode_html(raw, None)
        try:
            return extract_html(html, url, config)[0]
        except Exception:  # an empty prediction, as a failed page
            return ""

    return extract


def _trafilatura(**options: object) -> Callable[[bytes, str], str]:
    import trafilatura

    return lambda raw, url: trafilatura.extract(raw, url=url, **options) or ""


def _resiliparse() -> Callable[[bytes, str], str] | None:
    try:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    except ImportError:
        return None
    return lambda raw, url: extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=True)


def extraction_table(quick: bool) -> None:
    if not ARTICLES.is_dir():
        print(f"skipped extraction F1: {ARTICLES} absent")
        return
    evaluate = _load_metric()
    gold = json.loads((ARTICLES / "ground-truth.json").read_text())
    files = {key: ARTICLES / "html" / f"{key}.html.gz" for key in sorted(gold)}
    pages = {key: gzip.decompress(path.read_bytes()) for key, path in files.items() if path.exists()}
    gold = {key: gold[key] for key in pages}
    extractors: dict[str, Callable[[bytes, str], str] | None] = {
        "trafilatura default extract()": _trafilatura(),
        "medcurate (default: html_favor=precision)": _ours(IngestConfig()),
    }
    if not quick:
        extractors |= {
            "medcurate (html_favor=balanced)": _ours(IngestConfig(html_favor="balanced")),
            "medcurate (html_favor=recall)": _ours(IngestConfig(html_favor="recall")),
            "trafilatura include_comments=False": _trafilatura(include_comments=False),
            "trafilatura favor_recall": _trafilatura(favor_recall=True),
            "trafilatura favor_precision": _trafilatura(favor_precision=True),
            "resiliparse main_content": _resiliparse(),
        }
    print(
        f"\n## HTML extraction on {len(pages)} pages of article_extraction (shingle F1 of its evaluate.py)\n"
    )
    print(f"{'extractor':<42} {'F1':>6} {'prec':>6} {'recall':>6} {'pages/s':>8}")
    baseline = None
    for name, extract in extractors.items():
        if extract is None:
            print(f"{name:<42} not installed")
            continue
        start = time.perf_counter()
        predicted = {
            key: {"articleBody": extract(raw, gold[key].get("url", ""))} for key, raw in pages.items()
        }
        rate = len(pages) / (time.perf_counter() - start)
        metrics = evaluate(gold, predicted, n_bootstrap=0)
        baseline = baseline if baseline is not None else metrics["f1"]
        scores = f"{metrics['f1']:6.3f} {metrics['precision']:6.3f} {metrics['recall']:6.3f}"
        print(f"{name:<42} {scores} {rate:8.1f}  F1 vs trafilatura default: {metrics['f1'] / baseline:.3f}")


def _read_all(uris: list[str], config: IngestConfig) -> tuple[int, Counter[str], float]:
    samples, dead = 0, Counter()
    start = time.perf_counter()
    for uri in uris:
        for item in read_source(uri, config, on_skip=lambda reason: None):
            if isinstance(item, DeadLetter):
                dead[item.reason] += 1
            else:
                samples += 1
    return samples, dead, time.perf_counter() - start


def _dicom_uris() -> list[str]:
    import data_store
    import pydicom

    folders = [
        Path(pydicom.__file__).parent / "data" / "test_files",
        Path(data_store.__file__).parent / "data",
    ]
    return expand_inputs([str(f) for f in folders if f.is_dir()])


def _sets(quick: bool) -> dict[str, list[str]]:
    def existing(*parts: str) -> list[str]:
        path = DATA.joinpath(*parts)
        return expand_inputs([str(path)]) if path.exists() else []

    images = existing("images")
    if quick:
        images = [u for u in images if "/pneumoniamnist/png/" not in u] + [
            u for u in images if "/pneumoniamnist/png/" in u
        ][:300]
    return {
        "web/warc (warcio edge cases, Common Crawl)": existing("web", "warc"),
        "images (all of ../shared/data/images)": images,
        "pydicom + pydicom-data DICOMs": _dicom_uris(),
        "Synthea FHIR bundles": existing("phi", "synthea_fhir", "bundles"),
    }


def robustness_table(quick: bool) -> None:
    config = IngestConfig()
    print("\n## Robustness and throughput (read_source, one process)\n")
    print(f"{'set':<44} {'files':>6} {'samples':>8} {'dead':>5} {'samples/s':>10}  dead letters by reason")
    for name, uris in _sets(quick).items():
        if not uris:
            print(f"{name:<44} absent")
            continue
        samples, dead, seconds = _read_all(uris, config)
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(dead.items())) or "-"
        counts = f"{len(uris):6d} {samples:8d} {sum(dead.values()):5d}"
        print(f"{name:<44} {counts} {samples / seconds:10.1f}  {reasons}")


def warc_throughput() -> None:
    """Records/s on a WARC built from the benchmark pages (extraction dominates)."""
    import io
    import tempfile

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    if not ARTICLES.is_dir():
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "articles.warc.gz"
        with path.open("wb") as stream:
            writer = WARCWriter(stream, gzip=True)
            for page in sorted((ARTICLES / "html").glob("*.html.gz")):
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
                payload = io.BytesIO(gzip.decompress(page.read_bytes()))
                url = f"https://example.org/{page.stem}"
                record = writer.create_warc_record(url, "response", payload=payload, http_headers=headers)
                writer.write_record(record)
        samples, dead, seconds = _read_all([str(path)], IngestConfig())
        summary = f"{samples} samples, {sum(dead.values())} dead letters, {samples / seconds:.1f} records/s"
        print(f"\nWARC of the benchmark pages: {summary}")


def _figure(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A photo-sized JPEG with texture (so it encodes like a photo, not a flat colour)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = 128 + 60 * np.sin(x / (10 + seed % 7)) * np.cos(y / (13 + seed % 5))
    pixels = np.clip(base[..., None] + rng.normal(0, 18, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _with_figures(html: bytes, page: int, every: int) -> tuple[bytes, list[str]]:
    """The page with a captioned figure after every `every`-th paragraph, and the figures' paths."""
    import re

    paths: list[str] = []
    pieces = re.split(rb"(</p>)", html)
    out = []
    closed = 0
    for piece in pieces:
        out.append(piece)
        if piece == b"</p>":
            closed += 1
            if closed % every == 0:
                path = f"/figures/{page}-{len(paths)}.jpg"
                paths.append(path)
                out.append(
                    f'<figure><img src="{path}" alt="figure {len(paths)}"><figcaption>Figure '
                    f"{len(paths)}: what the paragraph above describes.</figcaption></figure>".encode()
                )
    return b"".join(out), paths


def multimodal_warc_throughput(quick: bool) -> None:
    """Records/s and MB/s of `read_source` on two WARCs of the same pages: as they are (text-only
    records), and with a captioned figure after every third paragraph whose JPEG is a record of the
    WARC (multimodal records: images found, decoded, filtered, re-encoded, hashed)."""
    import io
    import tempfile

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    if not ARTICLES.is_dir():
        print(f"skipped multimodal WARC throughput: {ARTICLES} absent")
        return
    pages = sorted((ARTICLES / "html").glob("*.html.gz"))[: 30 if quick else None]
    figures = [_figure(seed) for seed in range(64)]

    def write(path: Path, multimodal: bool) -> int:
        images = 0
        with path.open("wb") as stream:
            writer = WARCWriter(stream, gzip=True)
            for number, page in enumerate(pages):
                html = gzip.decompress(page.read_bytes())
                paths: list[str] = []
                if multimodal:
                    html, paths = _with_figures(html, number, every=3)
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
                url = f"https://example.org/{page.stem}"
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(html), http_headers=headers
                )
                writer.write_record(record)
                for index, figure_path in enumerate(paths):
                    headers = StatusAndHeaders(
                        "200 OK", [("Content-Type", "image/jpeg")], protocol="HTTP/1.0"
                    )
                    data = io.BytesIO(figures[(number + index) % len(figures)])
                    record = writer.create_warc_record(
                        f"https://example.org{figure_path}", "response", payload=data, http_headers=headers
                    )
                    writer.write_record(record)
                    images += 1
        return images

    print(f"\n## Multimodal WARC records beside text-only ones ({len(pages)} article_extraction pages)\n")
    print(f"{'WARC':<34} {'MB':>6} {'records/s':>10} {'images/s':>9} {'MB/s':>6}  samples by modality")
    with tempfile.TemporaryDirectory() as folder:
        for name, multimodal in (("text-only pages", False), ("pages + figure images", True)):
            path = Path(folder) / f"{multimodal}.warc.gz"
            images = write(path, multimodal)
            megabytes = path.stat().st_size / 1e6
            modalities: Counter[str] = Counter()
            left_out: Counter[str] = Counter()
            attached = 0
            start = time.perf_counter()
            for item in read_source(str(path), IngestConfig(), on_skip=lambda reason: None):
                if isinstance(item, dict):
                    modalities[item["modality"]] += 1
                    attached += sum(1 for image in item["images"] or [] if image is not None)
                    left_out.update(json.loads(item["metadata"].get("parts_dropped", "{}")))
            seconds = time.perf_counter() - start
            records = sum(modalities.values())
            kinds = ", ".join(f"{k}={n}" for k, n in sorted(modalities.items()))
            print(
                f"{name:<34} {megabytes:6.1f} {records / seconds:10.1f} {attached / seconds:9.1f} "
                f"{megabytes / seconds:6.2f}  {kinds}; {attached}/{images} images attached"
            )
            if left_out:
                print(
                    f"{'':<34} parts left out: " + ", ".join(f"{k}={n}" for k, n in sorted(left_out.items()))
                )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="default extractors only; 300 of the small PNGs")
    args = parser.parse_args()
    extraction_table(args.quick)
    warc_throughput()
    multimodal_warc_throughput(args.quick)
    robustness_table(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
