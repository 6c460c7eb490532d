"""Physician review of multimodal samples: an image beside its caption or report, and a verdict on
the pairing itself ("caption does not describe the image") as well as on the content."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.projects import (
    MULTIMODAL,
    MULTIMODAL_CONFIG,
    PAIRING_MISMATCH,
    connect,
    ensure_project,
)
from medcurate.annotators.pull import annotation_to_record, pull_reviews
from medcurate.annotators.push import push_samples, sample_to_task
from medcurate.schemas.sample import interleave, new_sample


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (180, 240, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def page_sample(
    uri: str = "https://site.example/page", caption: str | None = "A dilated left ventricle."
) -> dict:
    meta = {"format": "png", "width": 240, "height": 180, "caption": caption}
    fields = interleave(["Heart failure explained in plain words.", (_png(1), meta), "Treatment follows."])
    return new_sample(
        source_kind="web",
        modality="multimodal",
        source_uri=uri,
        review_status="pending",
        metadata={"deid.boxes": json.dumps({"1": [[10, 20, 110, 60]]})},
        **fields,
    )


def test_task_shows_the_image_beside_its_caption_with_deid_boxes():
    sample = page_sample()
    kind, task = sample_to_task(sample, ReviewConfig())
    assert kind == MULTIMODAL
    data = task["data"]
    assert data["caption"] == "A dilated left ventricle."
    assert data["text"] == sample["text"] and data["image_count"] == 1
    header, encoded = data["image"].split(",", 1)
    assert header == "data:image/png;base64" and base64.b64decode(encoded) == sample["images"][1]
    [box] = task["predictions"][0]["result"]
    assert box["to_name"] == "image"
    assert box["value"]["x"] == pytest.approx(100 * 10 / 240) and box["value"]["width"] == pytest.approx(
        100 * 100 / 240
    )


def test_an_image_without_caption_is_paired_with_the_text_after_it():
    sample = page_sample(caption=None)
    assert sample_to_task(sample, ReviewConfig())[1]["data"]["caption"] == "Treatment follows."


def test_pairing_mismatch_is_a_reject_whatever_the_content_verdict():
    task = {"id": 7, "data": {"sample_id": "abc"}, "predictions": []}
    result = [
        {"from_name": "verdict", "value": {"choices": ["accept"]}},
        {"from_name": "pairing", "value": {"choices": [PAIRING_MISMATCH]}},
    ]
    record = annotation_to_record(task, {"id": 1, "completed_by": 3, "result": result}, MULTIMODAL)
    assert record["verdict"] == "reject"
    result[1]["value"]["choices"] = ["match"]
    record = annotation_to_record(task, {"id": 2, "completed_by": 3, "result": result}, MULTIMODAL)
    assert record["verdict"] == "accept"


@pytest.mark.slow
def test_label_studio_takes_the_config_and_a_pairing_reject_comes_back(ls_config, tmp_path):
    config = ReviewConfig(
        label_studio=ls_config,
        multimodal_project="mm pairing",
        outbox=str(tmp_path / "outbox.jsonl"),
        reviews_dir=str(tmp_path / "reviews"),
        reviewers_per_task=1,
        backoff_s=0.2,
    )
    samples = [page_sample(f"https://site.example/{i}") for i in range(2)]
    assert push_samples(samples, config).sent == 2
    client = connect(config)
    project_id = ensure_project(client, config, MULTIMODAL)
    assert client.projects.get(project_id).label_config == MULTIMODAL_CONFIG
    tasks = {t.data["sample_id"]: t for t in client.tasks.list(project=project_id, fields="all")}
    assert set(tasks) == {s["id"] for s in samples}
    admin = client.users.whoami()
    for sample, pairing in zip(samples, ["match", PAIRING_MISMATCH], strict=True):
        result = [
            {"from_name": "pairing", "to_name": "image", "type": "choices", "value": {"choices": [pairing]}},
            {"from_name": "verdict", "to_name": "image", "type": "choices", "value": {"choices": ["accept"]}},
        ]
        client.annotations.create(tasks[sample["id"]].id, result=result, completed_by=admin.id)
    pulled = pull_reviews(config)
    assert pulled.verdicts == {"accepted": 1, "rejected": 1}
