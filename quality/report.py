"""The run report: `reports/<dataset>/<run>/index.html`, one static page that opens offline.

Every chart is drawn by matplotlib and embedded as inline SVG (no script, no CDN, no external file).
Only counts and score distributions are shown: no text, no identifier values.
"""

from __future__ import annotations

import html
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from medcurate.schemas.manifest import Manifest
from medcurate.warehouse import storage
from medcurate.warehouse.catalog import read_parquet_sql
from medcurate.warehouse.publish import read_manifest

REPORT_FILE = "index.html"
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
figure{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}
figcaption{font-size:.85rem;color:#555}
table{border-collapse:collapse;font-size:.85rem} td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
.fail{color:#a00;font-weight:bold} .pass{color:#060;font-weight:bold}
"""


def _svg(figure) -> str:
    """A matplotlib figure as an inline <svg> element (its XML prologue dropped)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(chart_id: str, caption: str, svg: str) -> str:
    return (
        f'<figure class="chart" id="{chart_id}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def _bar_chart(counts: dict[str, float], title: str, xlabel: str = "samples"):
    import matplotlib.pyplot as plt

    labels = list(counts) or ["(none)"]
    values = [counts[k] for k in counts] or [0]
    figure, axes = plt.subplots(figsize=(6, 0.35 * len(labels) + 1.2))
    axes.barh(labels, values, color="#4c72b0")
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    for y, value in enumerate(values):
        axes.text(value, y, f" {value:g}", va="center", fontsize=8)
    return figure


def _histograms(groups: dict[str, list[float]], title: str, xlabel: str, bins: int = 20, log: bool = False):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2))
    for name, values in sorted(groups.items()):
        axes.hist(
            values, bins=bins, range=None if log else (0, 1), alpha=0.6, label=f"{name} ({len(values)})"
        )
    if not groups:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    else:
        axes.legend(fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("samples")
    axes.set_title(title)
    return figure


def _scatter(points: list[tuple[int, int]], title: str):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    if points:
        axes.scatter([p[0] for p in points], [p[1] for p in points], s=18, color="#dd8452")
    else:
        axes.text(0.5, 0.5, "no images", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("width (px)")
    axes.set_ylabel("height (px)")
    axes.set_title(title)
    return figure


def _rows(version_dir: str, manifest: Manifest) -> list[dict[str, Any]]:
    shards = [storage.join(version_dir, shard.path) for shard in manifest.shards]
    if not shards:
        return []
    columns = (
        "source_kind, modality, language, quality_score, relevance_score, dedup_cluster_size, "
        "image_width, image_height, review_status, review_reasons, [r.type FOR r IN redactions] AS phi_types"
    )
    with duckdb.connect() as con:
        cursor = con.execute(f"SELECT {columns} FROM {read_parquet_sql(shards)}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def funnel(manifest: Manifest) -> dict[str, int]:
    """Read → each drop and dead letter by stage/reason → published."""
    counts = manifest.counts
    out = {"read": counts.read}
    out |= {f"dropped {k}": v for k, v in sorted(counts.dropped.items())}
    out |= {f"dead letter {k}": v for k, v in sorted(counts.dead_lettered.items())}
    out["published"] = counts.published
    return out


def review_records(manifest: Manifest) -> list[dict[str, Any]]:
    """The physicians' annotations pulled for this run's output (review.reviews_dir), if any."""
    import pyarrow.parquet as pq

    from medcurate.annotators.pull import RECORDS_FILE

    # The resolved configuration always names it (config.py places it beside the datasets); review
    # files are local.
    folder = ((manifest.config or {}).get("review") or {}).get("reviews_dir")
    path = Path(folder) / RECORDS_FILE if folder else None
    if path is None or not path.is_file():
        return []
    return pq.read_table(path).to_pylist()


def agreement_table(records: list[dict[str, Any]]) -> str:
    """Agreement between reviewers per question (Krippendorff's alpha over distinct reviewers)."""
    from medcurate.annotators.agreement import agreement

    found = agreement(records)
    if not found:
        return "<p>No sample has answers from two reviewers yet.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(field)}</td><td>{info['alpha']:.3f}</td><td>{html.escape(info['metric'])}</td>"
        f"<td>{info['samples']}</td></tr>"
        for field, info in found.items()
    )
    return (
        "<table><tr><th>question</th><th>Krippendorff's alpha</th><th>metric</th>"
        f"<th>samples with two or more reviewers</th></tr>{rows}</table>"
    )


def build_report(version_dir: str, report_dir: str) -> str:
    """Writes `report_dir/index.html` for the version a run published; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    # Text stays text (no glyph definitions whose ids would repeat across the page's SVGs).
    matplotlib.rcParams["svg.fonttype"] = "none"
    manifest = read_manifest(version_dir)
    rows = _rows(version_dir, manifest)
    text_rows = [r for r in rows if r["modality"] == "text"]

    def by_kind(field: str) -> dict[str, list[float]]:
        groups: dict[str, list[float]] = {}
        for row in text_rows:
            if row[field] is not None:
                groups.setdefault(row["source_kind"], []).append(float(row[field]))
        return groups

    phi = Counter(t for r in rows for t in (r["phi_types"] or []))
    reasons = Counter(reason for r in rows for reason in (r["review_reasons"] or []))
    status = Counter(r["review_status"] for r in rows)
    clusters = Counter(int(r["dedup_cluster_size"] or 1) for r in rows)
    charts = [
        (
            "funnel",
            "Funnel: read, each drop and dead letter by stage/reason, published",
            _bar_chart(funnel(manifest), "Funnel"),
        ),
        (
            "phi",
            "De-identified entities by type (published samples)",
            _bar_chart(dict(phi.most_common()), "PHI entities by type", "entities"),
        ),
        (
            "dedup",
            "Dedup cluster sizes of published samples (1: no near-duplicate)",
            _bar_chart({str(k): v for k, v in sorted(clusters.items())}, "Dedup cluster size"),
        ),
        (
            "language",
            "Language of published text samples",
            _bar_chart(dict(Counter(r["language"] or "und" for r in text_rows).most_common()), "Languages"),
        ),
        (
            "quality",
            "quality_score (P(a physician accepts)) by source kind",
            _histograms(by_kind("quality_score"), "Quality score", "quality_score"),
        ),
        (
            "relevance",
            "relevance_score (P(health content)) by source kind",
            _histograms(by_kind("relevance_score"), "Health relevance", "relevance_score"),
        ),
        (
            "images",
            "Published image sizes",
            _scatter(
                [(r["image_width"], r["image_height"]) for r in rows if r["image_width"]], "Image sizes"
            ),
        ),
        (
            "review",
            "Review status and routing reasons",
            _bar_chart(
                {
                    **{f"status {k}": v for k, v in sorted(status.items())},
                    **{f"reason {k}": v for k, v in sorted(reasons.items())},
                },
                "Review queue",
            ),
        ),
    ]
    validation = manifest.validation
    verdict = '<span class="pass">passed</span>' if validation.passed else '<span class="fail">FAILED</span>'
    failed = "".join(f"<li>{html.escape(f)}</li>" for f in validation.failed_expectations)
    models = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(json.dumps(info, default=str))}</td></tr>"
        for name, info in manifest.models.items()
    )
    review_counts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in manifest.review.items()
    )
    results = storage.join(version_dir, validation.results_path)
    results_link = results if "://" in results else os.path.relpath(results, report_dir)
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>medcurate run {html.escape(manifest.run_id)}</title><style>{_STYLE}</style></head><body>
<h1>{html.escape(manifest.dataset)} {html.escape(manifest.version)} — run {html.escape(manifest.run_id)}</h1>
<p>Created {html.escape(manifest.created_at)}, code {html.escape(manifest.code_version)}, {manifest.rows} rows in {len(manifest.shards)} shard(s).</p>
<h2>Validation</h2><p>Suite {html.escape(validation.suite)}: {verdict}.
<a href="{html.escape(results_link)}">Validation results (JSON)</a></p><ul>{failed}</ul>
<h2>Charts</h2>{"".join(_figure(cid, caption, _svg(fig)) for cid, caption, fig in charts)}
<h2>Models</h2><table><tr><th>model</th><th>version and metrics</th></tr>{models}</table>
<h2>Review</h2><table><tr><th>count</th><th>value</th></tr>{review_counts}</table>
<h3>Agreement between reviewers</h3>{agreement_table(review_records(manifest))}
</body></html>
"""
    path = storage.join(report_dir, REPORT_FILE)
    storage.write_text_atomic(path, body)
    return path


def find_run(output_dir: str, run_id: str | None) -> tuple[str, str, str]:
    """(dataset, version folder, report folder) of a run, or of the newest run when none is named."""
    found = []
    for manifest_path in sorted(Path(output_dir).glob("*/v*/manifest.json")):
        data = json.loads(manifest_path.read_text())
        if run_id is None or data.get("run_id") == run_id:
            found.append(
                (data.get("created_at", ""), data["dataset"], str(manifest_path.parent), data["run_id"])
            )
    if not found:
        raise FileNotFoundError(f"no published version of run {run_id or '(any)'} under {output_dir}")
    _, dataset, version_dir, run = max(found)
    return dataset, version_dir, storage.join(output_dir, "reports", dataset, run)
