"""Review tasks without a server: what the labeling configs offer, what pull keeps, who gets a task."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.missed import over_redaction_flags
from medcurate.annotators.projects import IMAGE_CONFIG, PHI_LABELS, REDACTED_CONTROL, TEXT_CONFIG
from medcurate.annotators.pull import annotation_to_record
from medcurate.annotators.push import sample_to_task
from medcurate.annotators.reviewers import Reviewer, assigned_reviewers
from medcurate.annotators.routing import AUDIT, LOW_DEID_CONFIDENCE
from medcurate.schemas.sample import new_sample

TEXT = "Daughter <PERSON> visited; Dr Pellworth adjusted the furosemide dose."


def controls(config: str) -> dict[str, ET.Element]:
    root = ET.fromstring(config)
    return {element.get("name"): element for element in root.iter() if element.get("toName")}


def hidden_names(config: str) -> set[str]:
    root = ET.fromstring(config)
    return {
        element.get("name")
        for view in root.iter("View")
        if view.get("className") == "mc-hidden"
        for element in view.iter()
        if element.get("name")
    }


def test_one_clickable_label_set_and_plain_questions():
    for config, marks in ((TEXT_CONFIG, "phi"), (IMAGE_CONFIG, "phi_boxes")):
        found = controls(config)
        region_controls = [n for n, e in found.items() if e.tag in ("Labels", "RectangleLabels")]
        # De-id's redactions are context (hidden label row); the reviewer has one set of PHI labels.
        assert hidden_names(config) == {REDACTED_CONTROL}
        clickable = [n for n in region_controls if n not in hidden_names(config)]
        assert sorted(clickable) == sorted([marks, "not_phi" if marks == "phi" else "not_phi_boxes"])
        labels = {label.get("alias"): label.get("value") for label in found[marks]}
        assert labels == PHI_LABELS
        verdict = {choice.get("alias"): choice.get("value") for choice in found["verdict"]}
        assert set(verdict) == {"accept", "reject"} and all(" " in shown for shown in verdict.values())
        assert "fit to train a medical model" in config and "1 = " in config and "5 = " in config
    specialties = [choice.get("value") for choice in controls(TEXT_CONFIG)["specialty"]]
    assert "General medicine" in specialties and not any("_" in s for s in specialties)


def test_task_header_says_why_and_how_confident():
    sample = new_sample(
        source_kind="clinical",
        modality="text",
        source_uri="fhir://x/1",
        text=TEXT,
        deid_confidence=0.37,
        redactions=[{"start": 9, "end": 17, "type": "PERSON", "score": 0.7}],
        review_reasons=[LOW_DEID_CONFIDENCE, AUDIT],
    )
    _, task = sample_to_task(sample, ReviewConfig())
    note = task["data"]["review_note"]
    assert "de-identification unsure, random audit" in note and "confidence 0.37" in note
    assert "1 item(s) removed" in note and "None" not in note and "null" not in note
    assert task["predictions"][0]["result"][0]["value"]["labels"] == ["PERSON"]


def test_pull_keeps_every_reviewer_region_and_over_redaction_marks():
    start = TEXT.index("Pellworth")
    person = TEXT.index("<PERSON>")
    predicted = {
        "from_name": REDACTED_CONTROL,
        "to_name": "text",
        "type": "labels",
        "value": {"start": person, "end": person + 8, "labels": ["PERSON"]},
    }
    task = {
        "id": 7,
        "data": {"sample_id": "s-7", "text": TEXT},
        "predictions": [{"model_version": "m", "result": [predicted]}],
    }
    annotation = {
        "id": 70,
        "completed_by": 3,
        "result": [
            predicted,  # de-id's redaction, carried into the annotation unchanged: not a flag
            # A name marked with a label from the de-id row (the lost flag of the old config).
            {
                "from_name": REDACTED_CONTROL,
                "to_name": "text",
                "type": "labels",
                "value": {"start": start, "end": start + 9, "labels": ["PERSON"]},
            },
            {
                "from_name": "not_phi",
                "to_name": "text",
                "type": "labels",
                "value": {"start": person, "end": person + 8, "labels": ["OVER_REDACTED"]},
            },
            {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": ["accept"]}},
        ],
    }
    record = annotation_to_record(task, annotation, "text")
    assert record["phi_spans"] == [{"start": start, "end": start + 9, "type": "PERSON"}]
    assert record["not_phi_spans"] == [{"start": person, "end": person + 8, "type": "OVER_REDACTED"}]
    assert record["verdict"] == "accept"
    (flag,) = over_redaction_flags(task, annotation, 3)
    span = flag["spans"][0]
    assert flag["text"][span["start"] : span["end"]] == "<PERSON>" and flag["text"].startswith("Daughter")


def test_each_sample_goes_to_a_stable_even_share_of_reviewers():
    reviewers = [Reviewer(f"r{i}@example.org", i, 100 + i) for i in range(4)]
    load: Counter = Counter()
    for n in range(2000):
        chosen = assigned_reviewers(f"sample-{n}", reviewers, 2)
        assert len({r.email for r in chosen}) == 2
        assert chosen == assigned_reviewers(f"sample-{n}", list(reversed(reviewers)), 2)
        load.update(r.email for r in chosen)
    assert all(900 < count < 1100 for count in load.values())  # 1,000 each expected
    assert assigned_reviewers("s", reviewers[:1], 2) == reviewers[:1]
