"""Beam adapter of the routing policy."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.routing import route_sample
from medcurate.pipelines.stage import count
from medcurate.schemas.sample import ReviewStatus


def _route_and_count(sample: dict[str, Any], config: ReviewConfig) -> dict[str, Any]:
    routed = route_sample(sample, config)
    if routed["review_status"] == ReviewStatus.PENDING:
        count("review:pending")
        for reason in routed["review_reasons"]:
            count(f"review:routed/{reason}")
    return routed


class RouteForReview(beam.PTransform):
    """Marks samples that go to physician review; every sample continues to the main output."""

    def __init__(self, config: ReviewConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, samples: beam.PCollection) -> beam.PCollection:
        return samples | "RouteSample" >> beam.Map(_route_and_count, self.config)
