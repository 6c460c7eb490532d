"""Routing policy: reasons, determinism of the audit draw, pending samples from de-id, Beam counters."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from medcurate.annotators.beam import RouteForReview
from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.routing import (
    AUDIT,
    IMAGE_TEXT,
    IMAGE_TEXT_UNCHECKED,
    LOW_DEID_CONFIDENCE,
    QUALITY_UNCERTAIN,
    audit_draw,
    route_sample,
)
from medcurate.schemas.sample import new_sample

NO_AUDIT = ReviewConfig(audit_fraction=0)


def text_sample(i: int = 0, **fields) -> dict:
    base = {"source_kind": "web", "modality": "text", "source_uri": f"https://example.org/{i}", "text": "x"}
    return new_sample(**{**base, **fields})


def test_confident_good_sample_publishes_directly():
    sample = text_sample(deid_confidence=0.95, quality_score=0.9)
    routed = route_sample(sample, NO_AUDIT)
    assert routed["review_status"] == "not_required"
    assert routed["review_reasons"] == []


def test_each_reason_is_recorded():
    routed = route_sample(text_sample(deid_confidence=0.2, quality_score=0.5), NO_AUDIT)
    assert routed["review_status"] == "pending"
    assert routed["review_reasons"] == [LOW_DEID_CONFIDENCE, QUALITY_UNCERTAIN]
    image = new_sample(
        source_kind="image",
        modality="image",
        source_uri="file:///a.dcm",
        metadata={"deid.boxes": "[[10, 10, 60, 24]]", "deid.ocr": "checked"},
    )
    assert route_sample(image, NO_AUDIT)["review_reasons"] == [IMAGE_TEXT]
    assert (
        route_sample(image, NO_AUDIT.model_copy(update={"review_images_with_text": False}))["review_reasons"]
        == []
    )


def test_route_does_not_mutate_its_input():
    sample = text_sample(deid_confidence=0.1)
    route_sample(sample, NO_AUDIT)
    assert sample["review_status"] == "not_required"
    assert sample["review_reasons"] == []


def test_pending_from_deid_stays_pending_and_keeps_its_reason():
    sample = new_sample(
        source_kind="image",
        modality="image",
        source_uri="file:///b.png",
        review_status="pending",
        review_reasons=[IMAGE_TEXT_UNCHECKED],
    )
    routed = route_sample(sample, NO_AUDIT)
    assert routed["review_status"] == "pending"
    assert routed["review_reasons"] == [IMAGE_TEXT_UNCHECKED]
    # Routing twice appends nothing twice.
    twice = route_sample(route_sample(text_sample(deid_confidence=0.1), NO_AUDIT), NO_AUDIT)
    assert twice["review_reasons"] == [LOW_DEID_CONFIDENCE]


def test_reviewed_samples_keep_their_verdict():
    sample = text_sample(deid_confidence=0.1, review_status="accepted")
    assert route_sample(sample, NO_AUDIT)["review_status"] == "accepted"


def test_audit_is_deterministic_and_close_to_its_fraction_per_kind():
    config = ReviewConfig(audit_fraction=0.1, audit_fraction_by_kind={"clinical": 0.5})
    web = [text_sample(i) for i in range(4000)]
    clinical = [text_sample(i, source_kind="clinical", source_uri=f"fhir://{i}") for i in range(4000)]
    web_audited = [s["id"] for s in web if AUDIT in route_sample(s, config)["review_reasons"]]
    clinical_audited = sum(AUDIT in route_sample(s, config)["review_reasons"] for s in clinical)
    assert 0.08 < len(web_audited) / 4000 < 0.12
    assert 0.46 < clinical_audited / 4000 < 0.54
    # Same ids, same draw, in any order and any run; another seed draws another set.
    again = [s["id"] for s in reversed(web) if AUDIT in route_sample(s, config)["review_reasons"]]
    assert sorted(again) == sorted(web_audited)
    other_seed = config.model_copy(update={"seed": 1})
    assert {s["id"] for s in web if AUDIT in route_sample(s, other_seed)["review_reasons"]} != set(
        web_audited
    )
    assert audit_draw("abc", 0) == audit_draw("abc", 0) != audit_draw("abc", 1)


def test_route_for_review_in_beam_counts_reasons():
    samples = [text_sample(i, deid_confidence=0.1 if i < 3 else 0.99, quality_score=0.9) for i in range(10)]
    expected = [(s["id"], "pending" if i < 3 else "not_required") for i, s in enumerate(samples)]
    pipeline = beam.Pipeline(runner="FnApiRunner", options=PipelineOptions([]))
    routed = pipeline | beam.Create(samples) | RouteForReview(NO_AUDIT)
    assert_that(routed | beam.Map(lambda s: (s["id"], s["review_status"])), equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("medcurate"))["counters"]
    }
    assert counters["review:pending"] == 3
    assert counters[f"review:routed/{LOW_DEID_CONFIDENCE}"] == 3
