"""Image review tasks without a server: inline data URIs, Local Files links, de-id boxes as predictions."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import IMAGE
from medcurate.annotators.push import sample_to_task
from medcurate.schemas.sample import new_sample


def image_sample(**fields) -> dict:
    buffer = io.BytesIO()
    Image.new("L", (200, 100), 90).save(buffer, format="PNG")
    return new_sample(
        source_kind="image",
        modality="image",
        source_uri="file:///scan.png",
        image_bytes=buffer.getvalue(),
        image_format="png",
        **fields,
    )


def test_without_local_files_the_image_travels_inline():
    sample = image_sample()
    kind, task = sample_to_task(sample, ReviewConfig())
    assert kind == IMAGE
    prefix = "data:image/png;base64,"
    assert task["data"]["image"].startswith(prefix)
    assert base64.b64decode(task["data"]["image"][len(prefix) :]) == sample["image_bytes"]
    assert task["predictions"][0]["result"] == []  # no de-id boxes, no predicted rectangles


def test_local_files_link_and_deid_boxes_in_percent(tmp_path):
    # Size deliberately read from the bytes: image_width/height are not set on this sample.
    sample = image_sample(metadata={"deid.boxes": json.dumps([[20, 10, 70, 30]])}, quality_score=0.8)
    config = ReviewConfig(label_studio=LabelStudioConfig(local_files_root=str(tmp_path)))
    _, task = sample_to_task(sample, config)
    written = tmp_path / "medcurate" / f"{sample['id']}.png"
    assert written.read_bytes() == sample["image_bytes"]
    assert task["data"]["image"] == f"/data/local-files/?d=medcurate/{sample['id']}.png"
    (prediction,) = task["predictions"]
    assert prediction["score"] == 0.8
    (box,) = prediction["result"]
    assert (box["from_name"], box["to_name"], box["type"]) == ("redacted", "image", "rectanglelabels")
    assert (box["original_width"], box["original_height"]) == (200, 100)
    value = box["value"]
    assert (value["x"], value["y"], value["width"], value["height"]) == (10.0, 10.0, 25.0, 20.0)
    assert value["rectanglelabels"] == ["OTHER"]
