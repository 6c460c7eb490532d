"""Arrow schemas of what physician review produces: one record per annotation, one verdict per sample.

Offsets of surviving PHI refer to the published (de-identified) text; the PHI value itself is
never stored. Reviewer comments are free text from physicians: they are de-identified like
notes before they are written, and never logged.
"""

from __future__ import annotations

import pyarrow as pa

REVIEW_SCHEMA_VERSION = 2  # 2: not_phi_spans, not_phi_boxes (over-redaction marks)

PHI_SPAN_TYPE = pa.struct(
    [
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
    ]
)

PHI_BOX_TYPE = pa.struct(
    [
        # Percentages of the image's width and height, as Label Studio reports them.
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
        pa.field("width", pa.float32(), nullable=False),
        pa.field("height", pa.float32(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
    ]
)

REVIEW_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("project", pa.string(), nullable=False),
        pa.field("task_id", pa.int64(), nullable=False),
        pa.field("annotation_id", pa.int64(), nullable=False),
        pa.field("reviewer_id", pa.int64(), nullable=False),
        pa.field("reviewer", pa.string()),
        pa.field("verdict", pa.string()),
        pa.field("accuracy", pa.int8()),
        pa.field("specialty", pa.string()),
        pa.field("image_quality", pa.int8()),
        pa.field("phi_spans", pa.list_(PHI_SPAN_TYPE)),
        pa.field("phi_boxes", pa.list_(PHI_BOX_TYPE)),
        # Redactions the reviewer marked "not PHI" (over-redaction): placeholders, not values.
        pa.field("not_phi_spans", pa.list_(PHI_SPAN_TYPE)),
        pa.field("not_phi_boxes", pa.list_(PHI_BOX_TYPE)),
        pa.field("comment", pa.string()),
        pa.field("lead_time_s", pa.float64()),
        pa.field("model_version", pa.string()),
        pa.field("created_at", pa.string()),
    ],
    metadata={"medcurate.schema": "review", "medcurate.schema_version": str(REVIEW_SCHEMA_VERSION)},
)

VERDICT_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("project", pa.string(), nullable=False),
        # accepted | rejected | adjudicate (reviewers disagree) | incomplete (too few reviews yet)
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reviews", pa.int32(), nullable=False),
        pa.field("accept_votes", pa.int32(), nullable=False),
        pa.field("reject_votes", pa.int32(), nullable=False),
        pa.field("accuracy", pa.float32()),
        pa.field("specialty", pa.string()),
        pa.field("image_quality", pa.float32()),
        pa.field("phi_spans", pa.list_(PHI_SPAN_TYPE)),
        pa.field("phi_boxes", pa.list_(PHI_BOX_TYPE)),
    ],
    metadata={"medcurate.schema": "verdict", "medcurate.schema_version": str(REVIEW_SCHEMA_VERSION)},
)
