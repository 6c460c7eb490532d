"""The review loop against a real Label Studio server, installed and started by the project's own code.

First run installs Label Studio into .venv-labelstudio (about a minute) and migrates a fresh
data folder (about 40 s); two reviewers are simulated through the API.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import threading
import time
import urllib.request

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFont

from medcurate.annotators import server
from medcurate.annotators.agreement import krippendorff_alpha
from medcurate.annotators.cli import labelstudio_command, review_command
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import IMAGE, TEXT, connect, ensure_project
from medcurate.annotators.pull import RECORDS_FILE, pull_reviews
from medcurate.annotators.push import Outbox, push_samples
from medcurate.annotators.routing import IMAGE_TEXT, route_sample
from medcurate.annotators.verdicts import REJECTED, apply_verdict, load_verdicts
from medcurate.cli import CliError
from medcurate.config import load_config
from medcurate.pipelines.curate import run
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import scrub_image_sample
from medcurate.privacy.text import TextDeidentifier
from medcurate.schemas.events import Drop
from medcurate.schemas.review import REVIEW_SCHEMA
from medcurate.schemas.sample import new_sample, samples_to_table

pytestmark = pytest.mark.slow

NOTE = "Seen today by Dr Alvarez for chest pain; <PERSON> reports dyspnea. Follow up in clinic. "
QUOTING_COMMENT = "Mr Harold Whitcombe rang on 555-867-5309 to say the dose is wrong."
PLAIN_COMMENT = "Dyspnea with chest pain fits; reasonable follow up plan."


def pending_samples(n: int, prefix: str) -> list[dict]:
    samples = []
    for i in range(n):
        sample = new_sample(
            source_kind="clinical",
            modality="text",
            source_uri=f"fhir://{prefix}/{i}",
            text=NOTE,
            language="en",
            quality_score=0.5,
            deid_confidence=0.3,
            redactions=[{"start": 41, "end": 49, "type": "PERSON", "score": 0.85}],
        )
        samples.append(route_sample(sample, ReviewConfig(audit_fraction=0)))
    return samples


def task_sample_ids(config: ReviewConfig) -> list[str]:
    """Every task's sample id, duplicates kept: what 'exactly once' is checked against."""
    client = connect(config)
    project_id = ensure_project(client, config, TEXT)
    tasks = client.tasks.list(project=project_id, fields="task_only", include="id,data", page_size=1000)
    return [task.data["sample_id"] for task in tasks]


def annotation(
    verdict: str, accuracy: int, specialty: str, phi: tuple[int, int] | None = None, comment: str = ""
) -> list[dict]:
    result = [
        {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": [verdict]}},
        {"from_name": "accuracy", "to_name": "text", "type": "rating", "value": {"rating": accuracy}},
        {"from_name": "specialty", "to_name": "text", "type": "choices", "value": {"choices": [specialty]}},
    ]
    if comment:
        result.append(
            {"from_name": "comment", "to_name": "text", "type": "textarea", "value": {"text": [comment]}}
        )
    if phi:
        value = {"start": phi[0], "end": phi[1], "text": NOTE[phi[0] : phi[1]], "labels": ["PERSON"]}
        result.append({"from_name": "phi", "to_name": "text", "type": "labels", "value": value})
    return result


def test_krippendorff_alpha_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units.
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [list(values) for values in zip(*coders, strict=True)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=1e-3)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=1e-3)
    assert krippendorff_alpha([["a", "a"], ["b", "b"]]) == 1.0
    assert krippendorff_alpha([["a", "a"]]) is None  # no variation: undefined


def test_end_to_end_two_reviewers_one_disagreement(ls_config, tmp_path, review_config, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    config = review_config(ls_config, "e2e", backoff_s=0.2)
    samples = pending_samples(5, "e2e")
    assert push_samples(samples, config).sent == 5

    client = connect(config)
    project_id = ensure_project(client, config, TEXT)
    listed = client.tasks.list(project=project_id, fields="all", page_size=100)
    tasks = {task.data["sample_id"]: task for task in listed}
    assert set(tasks) == {s["id"] for s in samples}
    prediction = tasks[samples[0]["id"]].predictions[0]
    assert prediction.model_version == config.model_version
    assert prediction.result[0]["value"]["labels"] == ["PERSON"]
    assert prediction.score == pytest.approx(0.5)

    admin = client.users.whoami()
    second = client.users.create(username="reviewer2", email="reviewer2@example.org", password="rev2-pass!")
    plan = {  # sample index -> (first reviewer, second reviewer)
        0: (
            annotation("accept", 5, "cardiology", comment=QUOTING_COMMENT),
            annotation("accept", 4, "cardiology", comment=PLAIN_COMMENT),
        ),
        1: (annotation("reject", 1, "cardiology"), annotation("reject", 2, "other")),
        2: (annotation("accept", 4, "cardiology", phi=(17, 24)), annotation("accept", 4, "cardiology")),
        3: (annotation("accept", 3, "cardiology"), annotation("reject", 2, "cardiology")),
    }  # sample 4 stays unreviewed
    for index, (first, other) in plan.items():
        task_id = tasks[samples[index]["id"]].id
        client.annotations.create(task_id, result=first, completed_by=admin.id, lead_time=12.0)
        client.annotations.create(task_id, result=other, completed_by=second.id, lead_time=30.0)

    result = pull_reviews(config)
    assert result.records == 8
    assert result.verdicts == {"accepted": 2, "rejected": 1, "adjudicate": 1}
    records = pq.read_table(tmp_path / "reviews" / RECORDS_FILE)
    assert records.schema.equals(REVIEW_SCHEMA, check_metadata=False)
    assert sorted(set(records.column("reviewer_id").to_pylist())) == sorted({admin.id, second.id})
    assert set(records.column("model_version").to_pylist()) == {config.model_version}
    # Agreement: verdicts differ on one of four samples; recompute from the plan, not from the server.
    votes = [[a[0]["value"]["choices"][0], b[0]["value"]["choices"][0]] for a, b in plan.values()]
    assert result.agreement["verdict"]["alpha"] == pytest.approx(krippendorff_alpha(votes))
    assert result.agreement["verdict"]["samples"] == 4

    # A reviewer quoting the patient: the stored comment is de-identified; a plain one is kept as typed.
    comments = [c for c in records.column("comment").to_pylist() if c]
    assert len(comments) == 2 and PLAIN_COMMENT in comments
    (quoted,) = (c for c in comments if c != PLAIN_COMMENT)
    assert "<PERSON>" in quoted and "Whitcombe" not in quoted and "555-867-5309" not in quoted
    for path in (tmp_path / "reviews").iterdir():
        assert b"Whitcombe" not in path.read_bytes()

    verdicts = load_verdicts(tmp_path / "reviews")
    applied = [apply_verdict(sample, verdicts.get(sample["id"])) for sample in samples]
    assert isinstance(applied[1], Drop) and applied[1].reason == REJECTED and applied[1].stage == "review"
    published = [s for s in applied if not isinstance(s, Drop)]
    assert [s["review_status"] for s in published] == ["accepted", "accepted", "pending", "pending"]
    assert published[0]["review_accuracy"] == pytest.approx(4.5)
    assert published[0]["review_specialty"] == "cardiology"
    assert "Alvarez" not in published[1]["text"] and "Dr <PERSON> for" in published[1]["text"]
    # The de-id redaction after the flagged span moved with the text and still points at its placeholder.
    moved = next(r for r in published[1]["redactions"] if r["score"] is not None)
    assert published[1]["text"][moved["start"] : moved["end"]] == "<PERSON>"
    assert samples_to_table(published).num_rows == 4

    labelstudio_command(argparse.Namespace(action="status", config=None, overrides=_overrides(ls_config)), [])
    token = server.admin_token(ls_config)
    printed = capsys.readouterr()
    assert "running at" in printed.out
    assert token not in printed.out + printed.err + caplog.text
    assert token not in (server.data_dir(ls_config) / server.LOG_FILE).read_text()
    for path in (tmp_path / "reviews").iterdir():
        assert token.encode() not in path.read_bytes()


def _overrides(ls_config: LabelStudioConfig) -> list[str]:
    return [f"review.label_studio.data_dir={ls_config.data_dir}"]


@pytest.fixture(scope="module")
def ls_images(ls_config: LabelStudioConfig, tmp_path_factory) -> LabelStudioConfig:
    """The shared server restarted on its data folder (seconds) with Local Files serving on."""
    images = ls_config.model_copy(update={"local_files_root": str(tmp_path_factory.mktemp("local_files"))})
    server.stop(ls_config)
    server.start(images)
    return images


def burned_in_png() -> bytes:
    image = Image.new("RGB", (640, 200), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    draw.text((20, 20), "Patient: Dr. Harold Whitcombe", fill=(255, 255, 255), font=font)
    draw.text((20, 120), "Chest PA view", fill=(255, 255, 255), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_annotation(verdict: str, quality: int, box: dict | None) -> list[dict]:
    result = [
        {"from_name": "verdict", "to_name": "image", "type": "choices", "value": {"choices": [verdict]}},
        {"from_name": "image_quality", "to_name": "image", "type": "rating", "value": {"rating": quality}},
    ]
    if box:
        value = {**box, "rotation": 0, "rectanglelabels": ["PERSON"]}
        result.append(
            {
                "from_name": "phi_boxes",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": 640,
                "original_height": 200,
                "value": value,
            }
        )
    return result


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_image_review_boxes_come_back_and_are_blacked_out(ls_images, tmp_path, review_config):
    """Burned-in PHI: de-id boxes as predictions, image served by Local Files, reviewer boxes applied."""
    config = review_config(ls_images, "images", backoff_s=0.2, audit_fraction=0)
    deid = DeidConfig()
    raw = new_sample(
        source_kind="image", modality="image", source_uri="file:///xray.png", image_bytes=burned_in_png()
    )
    sample = route_sample(scrub_image_sample(raw, TextDeidentifier(deid), deid), config)
    assert sample["review_status"] == "pending" and sample["review_reasons"] == [IMAGE_TEXT]
    deid_boxes = json.loads(sample["metadata"]["deid.boxes"])
    assert push_samples([sample], config).sent == 1

    client = connect(config)
    project_id = ensure_project(client, config, IMAGE)
    (task,) = client.tasks.list(project=project_id, fields="all")
    assert task.data["sample_id"] == sample["id"]
    # The server itself serves the pushed (de-identified) bytes from the Local Files storage.
    request = urllib.request.Request(
        server.read_state(ls_images).url + task.data["image"],
        headers={"Authorization": f"Token {server.admin_token(ls_images)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == sample["image_bytes"]
    predicted = [item["value"] for item in task.predictions[0].result]
    assert [item["from_name"] for item in task.predictions[0].result] == ["redacted"] * len(deid_boxes)
    for value, (left, top, right, bottom) in zip(predicted, deid_boxes, strict=True):
        assert value["x"] * 640 / 100 == pytest.approx(left)
        assert value["width"] * 640 / 100 == pytest.approx(right - left)
        assert value["y"] * 200 / 100 == pytest.approx(top)
        assert value["height"] * 200 / 100 == pytest.approx(bottom - top)

    # Both physicians accept; each boxes text de-id left readable ("Chest PA view", x 20-230, y 120-150).
    first_box = {"x": 2.5, "y": 58.0, "width": 20.0, "height": 20.0}
    second_box = {"x": 20.0, "y": 58.0, "width": 18.0, "height": 20.0}
    admin = client.users.whoami()
    other = client.users.create(username="image-rev2", email="image-rev2@example.org", password="rev2-pass!")
    client.annotations.create(task.id, result=image_annotation("accept", 4, first_box), completed_by=admin.id)
    client.annotations.create(
        task.id, result=image_annotation("accept", 2, second_box), completed_by=other.id
    )

    assert pull_reviews(config).verdicts == {"accepted": 1}
    records = pq.read_table(tmp_path / "reviews" / RECORDS_FILE).to_pylist()
    assert sorted(box["x"] for r in records for box in r["phi_boxes"]) == pytest.approx([2.5, 20.0])
    verdict = load_verdicts(tmp_path / "reviews")[sample["id"]]
    assert verdict.image_quality == pytest.approx(3.0) and len(verdict.phi_boxes) == 2

    applied = apply_verdict(sample, verdict)
    assert applied["review_status"] == "accepted" and applied["review_image_quality"] == pytest.approx(3.0)
    before, after = pixels(sample["image_bytes"]), pixels(applied["image_bytes"])
    inside = np.zeros(before.shape[:2], dtype=bool)
    inside[117:156, 17:243] = True  # both boxes (y 116-156, x 16-243), one pixel in from each edge
    outside = np.ones(before.shape[:2], dtype=bool)
    outside[114:159, 14:246] = False  # one pixel of slack for rounding at the edges
    assert (before[inside] != 0).any()  # there was something to black out
    assert (after[inside] == 0).all()
    assert (after[outside] == before[outside]).all()


def test_repush_and_server_stopped_mid_push_leave_every_task_once(ls_config, tmp_path, review_config):
    config = review_config(ls_config, "resilience", backoff_s=0.2, batch_size=200, max_retries=1)
    samples = pending_samples(3000, "resilience")
    outcome: dict = {}
    pusher = threading.Thread(target=lambda: outcome.update(first=push_samples(samples, config)))
    pusher.start()
    deadline = time.monotonic() + 120
    # Stop the server once some but not all batches have gone through: the outbox was seen whole
    # (a read during the append can see part of it) and has shrunk since.
    seen_whole = False
    while time.monotonic() < deadline:
        pending = len(Outbox(config.outbox).load())
        seen_whole = seen_whole or pending == 3000
        if seen_whole and 0 < pending < 3000:
            break
        time.sleep(0.05)
    server.stop(ls_config)
    try:
        pusher.join(timeout=120)
        first = outcome["first"]
        assert 0 < first.sent < 3000
        assert first.left_in_outbox > 0
        assert first.sent + first.left_in_outbox >= 3000  # nothing lost: unsent tasks wait in the outbox
    finally:
        server.start(ls_config)  # the server is shared by the session's other tests
    second = push_samples(samples, config)  # a rerun pushes the same samples again
    assert second.left_in_outbox == 0
    assert not (tmp_path / "outbox.jsonl").exists()
    ids = task_sample_ids(config)
    assert len(ids) == 3000 and set(ids) == {s["id"] for s in samples}

    third = push_samples(samples, config)
    assert third.sent == 0 and third.already_present == 3000
    assert len(task_sample_ids(config)) == 3000


PIPELINE_NOTES = [
    "Cardiology clinic: stable angina on exertion, started bisoprolol and atorvastatin, stress test booked.",
    "Dermatology review: plaque psoriasis on both elbows improving with topical calcipotriol and steroid.",
    "Orthopaedic follow up: right knee osteoarthritis, physiotherapy helping, continue regular paracetamol.",
    "Respiratory clinic: COPD exacerbation last month, now on a triple inhaler, pulmonary rehab referral.",
]


def push_command(overrides: list[str], version: str | None = None) -> None:
    """`medcurate review push [--version V]` without paths, through its CLI handler (prints JSON)."""
    args = argparse.Namespace(
        action="push", config=None, overrides=overrides, paths=[], dataset=None, version=version
    )
    assert review_command(args, []) == 0


def test_pipeline_run_review_then_next_version_applies_verdicts(ls_config, tmp_path, capsys):
    """run -> `review push` -> tasks with predictions -> two reviewers (one disagreement) ->
    `review pull` -> next version, which pushes after publishing."""
    notes = tmp_path / "notes.jsonl"
    notes.write_text(
        "".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(PIPELINE_NOTES))
    )
    overrides = [
        f"ingest.inputs=['{notes}']",
        f"publish.output_dir={tmp_path / 'out'}",
        "review.audit_fraction=1",
        f"review.label_studio.data_dir={ls_config.data_dir}",
        "review.text_project=pipeline text",
        "review.image_project=pipeline image",
    ]
    with pytest.raises(CliError, match="nothing has been published"):
        push_command(overrides)
    config = load_config(None, overrides)
    first = run(config)
    assert first.manifest.review["pending"] == 4
    assert first.pushed is None  # push_after_run is off: the command pushes the latest version
    capsys.readouterr()
    push_command(overrides)
    assert json.loads(capsys.readouterr().out)["sent"] == 4

    client = connect(config.review)
    project_id = ensure_project(client, config.review, TEXT)
    tasks = {
        t.data["sample_id"]: t for t in client.tasks.list(project=project_id, fields="all", page_size=100)
    }
    published = duckdb.sql(
        f"SELECT id, source_uri FROM read_parquet('{first.version_dir}/data/*.parquet')"
    ).fetchall()
    assert set(tasks) == {row[0] for row in published}
    assert all(task.predictions for task in tasks.values())
    by_record = {uri.rsplit("=", 1)[1]: sample_id for sample_id, uri in published}
    ids = [by_record[str(index)] for index in range(len(PIPELINE_NOTES))]

    admin = client.users.whoami()
    second = client.users.create(
        username="pipeline-rev2", email="pipeline-rev2@example.org", password="rev2-pass!"
    )
    plan = {
        ids[0]: (annotation("accept", 5, "cardiology"), annotation("accept", 4, "cardiology")),
        ids[1]: (annotation("reject", 1, "dermatology"), annotation("reject", 2, "dermatology")),
        ids[2]: (annotation("accept", 4, "orthopedics"), annotation("reject", 2, "orthopedics")),
    }  # ids[3] stays unreviewed
    for sample_id, (first_result, second_result) in plan.items():
        client.annotations.create(tasks[sample_id].id, result=first_result, completed_by=admin.id)
        client.annotations.create(tasks[sample_id].id, result=second_result, completed_by=second.id)
    capsys.readouterr()
    pull = argparse.Namespace(action="pull", config=None, overrides=overrides, out=None)
    assert review_command(pull, []) == 0  # `medcurate review pull`, into <output_dir>/reviews
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["verdicts"] == {"accepted": 1, "rejected": 1, "adjudicate": 1}
    assert pulled["agreement"]["verdict"]["samples"] == 3
    assert pulled["out_dir"] == config.review.reviews_dir

    second_run = run(load_config(None, [*overrides, "review.push_after_run=true"]))
    assert (second_run.manifest.version, second_run.manifest.parent) == ("v0002", "v0001")
    assert second_run.manifest.counts.dropped == {"review/rejected_by_reviewer": 1}
    assert second_run.manifest.review["applied/accepted"] == 1
    assert second_run.pushed is not None and second_run.pushed.sent == 0  # pending ones are there already
    rows = {
        row[0]: row[1:]
        for row in duckdb.sql(
            "SELECT id, review_status, review_accuracy, review_specialty "
            f"FROM read_parquet('{second_run.version_dir}/data/*.parquet')"
        ).fetchall()
    }
    assert ids[1] not in rows
    assert rows[ids[0]] == ("accepted", pytest.approx(4.5), "cardiology")
    assert rows[ids[2]][0] == rows[ids[3]][0] == "pending"
    assert len(list(client.tasks.list(project=project_id, page_size=100))) == 4  # nothing duplicated
    capsys.readouterr()
    push_command(overrides, version="1")  # v0001 named explicitly: its pending samples are all there
    printed = capsys.readouterr()
    assert "medcurate-sample v0001" in printed.err
    pushed = json.loads(printed.out)
    assert (pushed["sent"], pushed["already_present"], pushed["left_in_outbox"]) == (0, 4, 0)
