"""The run report: `reports/<dataset>/<run>/index.html`, one static page that opens offline.

Every chart is drawn by matplotlib and embedded as inline SVG (no script, no CDN, no external file).
Only counts and score distributions are shown: no text, no identifier values.
"""

from __future__ import annotations

import html
import io
import json
import os
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


# Bins of the score histograms: DuckDB counts them, matplotlib draws the counts.
SCORE_BINS = 20
# The image-size scatter shows at most this many distinct (width, height) points, the most common.
SCATTER_POINTS = 5000


def _histograms(groups: dict[str, list[int]], title: str, xlabel: str):
    """One histogram per group, from `SCORE_BINS` counts over [0, 1] per group."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2))
    edges = [index / SCORE_BINS for index in range(SCORE_BINS + 1)]
    for name, counts in sorted(groups.items()):
        axes.hist(edges[:-1], bins=edges, weights=counts, alpha=0.6, label=f"{name} ({sum(counts)})")
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


class ShardFigures:
    """The report's figures as DuckDB aggregates over the published shards: what Python holds is
    a few counts per chart, never a row per sample, whatever the size of the version."""

    def __init__(self, shards: list[str]) -> None:
        self.con = duckdb.connect()
        self.source = read_parquet_sql(shards) if shards else None

    def close(self) -> None:
        self.con.close()

    def _query(self, sql: str) -> list[tuple]:
        if self.source is None:
            return []
        return self.con.execute(sql.replace("{rows}", self.source)).fetchall()

    def counts(self, expression: str, where: str = "true") -> dict[str, int]:
        """Rows per value of `expression` (NULLs left out), most common first."""
        found = self._query(
            f"SELECT value, count(*) AS n FROM (SELECT {expression} AS value FROM {{rows}} WHERE {where}) "
            "WHERE value IS NOT NULL GROUP BY value ORDER BY n DESC, value"
        )
        return {value: n for value, n in found}

    def bins(self, field: str) -> dict[str, list[int]]:
        """Per source kind of text rows: counts of `field` in `SCORE_BINS` equal bins over [0, 1]
        (the last bin closed, as matplotlib's); values outside [0, 1] are left out."""
        groups: dict[str, list[int]] = {}
        found = self._query(
            f"SELECT source_kind, least(floor({field} * {SCORE_BINS}), {SCORE_BINS - 1})::INTEGER AS bin,"
            f" count(*) FROM {{rows}} WHERE modality = 'text' AND {field} BETWEEN 0 AND 1 "
            "GROUP BY ALL"
        )
        for kind, index, n in found:
            groups.setdefault(kind, [0] * SCORE_BINS)[index] += n
        return groups

    def image_sizes(self) -> list[tuple[int, int]]:
        return [
            (width, height)
            for width, height, _ in self._query(
                "SELECT image_width, image_height, count(*) AS n FROM {rows} WHERE image_width > 0 "
                f"GROUP BY ALL ORDER BY n DESC, image_width, image_height LIMIT {SCATTER_POINTS}"
            )
        ]


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


def _charts(manifest: Manifest, figures: ShardFigures) -> list[tuple[str, str, Any]]:
    """(chart id, caption, matplotlib figure) for every chart of the report."""
    phi = figures.counts("unnest([r.type FOR r IN redactions])")
    reasons = figures.counts("unnest(review_reasons)")
    status = figures.counts("review_status")
    clusters = figures.counts("coalesce(dedup_cluster_size, 1)::BIGINT")
    languages = figures.counts("coalesce(language, 'und')", "modality = 'text'")
    return [
        (
            "funnel",
            "Funnel: read, each drop and dead letter by stage/reason, published",
            _bar_chart(funnel(manifest), "Funnel"),
        ),
        (
            "phi",
            "De-identified entities by type (published samples)",
            _bar_chart(phi, "PHI entities by type", "entities"),
        ),
        (
            "dedup",
            "Dedup cluster sizes of published samples (1: no near-duplicate)",
            _bar_chart({str(k): v for k, v in sorted(clusters.items())}, "Dedup cluster size"),
        ),
        (
            "language",
            "Language of published text samples",
            _bar_chart(languages, "Languages"),
        ),
        (
            "quality",
            "quality_score (P(a physician accepts)) by source kind",
            _histograms(figures.bins("quality_score"), "Quality score", "quality_score"),
        ),
        (
            "relevance",
            "relevance_score (P(health content)) by source kind",
            _histograms(figures.bins("relevance_score"), "Health relevance", "relevance_score"),
        ),
        (
            "images",
            "Published image sizes",
            _scatter(figures.image_sizes(), "Image sizes"),
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


def build_report(version_dir: str, report_dir: str) -> str:
    """Writes `report_dir/index.html` for the version a run published; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    # Text stays text (no glyph definitions whose ids would repeat across the page's SVGs).
    matplotlib.rcParams["svg.fonttype"] = "none"
    manifest = read_manifest(version_dir)
    figures = ShardFigures([storage.join(version_dir, shard.path) for shard in manifest.shards])
    try:
        charts = _charts(manifest, figures)
    finally:
        figures.close()
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
