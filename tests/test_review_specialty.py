"""Specialty routing: the predictor, the task header, who gets a task, and (slow) a real push."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medcurate.annotators import server
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import TEXT, ensure_project, existing_sample_ids
from medcurate.annotators.push import push_samples, reviewer_client, sample_to_task, task_reviewers
from medcurate.annotators.reviewers import SECRETS_FILE, Reviewer, add_reviewer
from medcurate.annotators.routing import AUDIT
from medcurate.annotators.specialty import UNKNOWN, predict_specialty
from medcurate.schemas.sample import new_sample

CARDIO = (
    "Admitted with exertional angina. Troponin rose overnight; echocardiography showed an "
    "ejection fraction of 35% and the coronary angiogram a tight stenosis, treated with a stent."
)
ONCO = (
    "Biopsy confirmed a carcinoma of the left breast; staging CT found no metastasis, chemotherapy planned."
)
ENDO = "Type 2 diabetes, HbA1c 8.1%; metformin increased and insulin started at night."
PLAIN = "The patient walked to the shop and bought bread for the week."


def sample(text: str, n: int = 0) -> dict:
    return new_sample(
        source_kind="clinical", modality="text", source_uri=f"fhir://x/{n}", text=text, review_reasons=[AUDIT]
    )


def reviewers() -> list[Reviewer]:
    team = [Reviewer(f"gp{i}@example.org", i, 100 + i, "general_medicine") for i in range(4)]
    return [*team, Reviewer("heart@example.org", 9, 109, "cardiology")]


def test_predictor_names_the_dominant_specialty_or_unknown():
    assert predict_specialty(CARDIO) == "cardiology"
    assert predict_specialty(ONCO) == "oncology"
    assert predict_specialty(ENDO) == "endocrinology"
    assert predict_specialty(PLAIN) == UNKNOWN
    assert predict_specialty("") == UNKNOWN
    assert predict_specialty("Mild fever.") == UNKNOWN  # one term is not enough
    assert predict_specialty("Carditis.") == UNKNOWN  # one term: word starts only, no double count
    assert predict_specialty("Discard the scan") == UNKNOWN  # "card" inside a word is no match


def test_task_carries_the_specialty_and_shows_it_next_to_the_reason():
    _, task = sample_to_task(sample(CARDIO), ReviewConfig())
    assert task["data"]["predicted_specialty"] == "cardiology"
    assert "Why: random audit · likely Cardiology" in task["data"]["review_note"]
    _, task = sample_to_task(sample(PLAIN), ReviewConfig())
    assert task["data"]["predicted_specialty"] == UNKNOWN and "likely" not in task["data"]["review_note"]


def test_cardiology_goes_to_the_cardiologist_and_unknown_spreads_over_everyone():
    config, team = ReviewConfig(reviewers_per_task=2), reviewers()
    for n in range(50):
        _, task = sample_to_task(sample(CARDIO, n), config)
        chosen = task_reviewers(task, team, config)
        assert chosen[0].email == "heart@example.org" and len({r.email for r in chosen}) == 2
    seen = set()
    for n in range(200):
        _, task = sample_to_task(sample(PLAIN, n), config)
        chosen = task_reviewers(task, team, config)
        assert len({r.email for r in chosen}) == 2
        seen.update(r.email for r in chosen)
    assert seen == {r.email for r in team}  # the fallback hash reaches every reviewer
    # No oncologist registered: oncology falls back to the hash as well.
    loads = {r.email: 0 for r in team}
    for n in range(200):
        _, task = sample_to_task(sample(ONCO, n), config)
        for r in task_reviewers(task, team, config):
            loads[r.email] += 1
    assert all(40 < count < 120 for count in loads.values())  # 80 each expected


def test_config_map_overrides_the_recorded_specialty():
    team = reviewers()
    config = ReviewConfig(reviewers_per_task=1, specialty_reviewers={"cardiology": ["GP2@Example.org"]})
    for n in range(20):
        _, task = sample_to_task(sample(CARDIO, n), config)
        assert [r.email for r in task_reviewers(task, team, config)] == ["gp2@example.org"]
    # A specialty the map lists nothing valid for has no specialists: it spreads over everyone.
    config = ReviewConfig(
        reviewers_per_task=1, specialty_reviewers={"cardiology": [], "oncology": ["heart@example.org"]}
    )
    _, onco = sample_to_task(sample(ONCO), config)
    assert [r.email for r in task_reviewers(onco, team, config)] == ["heart@example.org"]
    picked = {
        task_reviewers(sample_to_task(sample(CARDIO, n), config)[1], team, config)[0].email for n in range(40)
    }
    assert len(picked) > 1
    with pytest.raises(ValidationError, match="unknown specialty"):
        ReviewConfig(specialty_reviewers={"cardio": ["a@example.org"]})


def test_tasks_queued_without_a_specialty_still_route():
    config, team = ReviewConfig(reviewers_per_task=2), reviewers()
    _, task = sample_to_task(sample(CARDIO), config)
    del task["data"]["predicted_specialty"]  # an outbox line written before specialties existed
    assert len(task_reviewers(task, team, config)) == 2


@pytest.fixture
def two_reviewers(ls_config: LabelStudioConfig):
    """A cardiologist and a generalist on the shared server, for this test only."""
    store = server.data_dir(ls_config) / SECRETS_FILE
    assert not store.exists()
    team = [
        add_reviewer(ls_config, "k.ostrander@example.org", "cardiology")[0],
        add_reviewer(ls_config, "m.venholt@example.org", "general_medicine")[0],
    ]
    yield team
    store.unlink(missing_ok=True)


@pytest.mark.slow
def test_push_fills_the_cardiologists_project_with_cardiology(ls_config, two_reviewers, tmp_path):
    config = ReviewConfig(
        label_studio=ls_config,
        text_project="specialty text",
        outbox=str(tmp_path / "outbox.jsonl"),
        reviewers_per_task=1,
    )
    cardio = [sample(CARDIO, n) for n in range(6)]
    plain = [sample(PLAIN, 10 + n) for n in range(12)]
    assert push_samples([*cardio, *plain], config).sent == 18
    held = {}
    for reviewer in two_reviewers:
        own = reviewer_client(config, reviewer.email)
        project_id = ensure_project(own, config, TEXT, per_reviewer=True)
        held[reviewer.specialty] = existing_sample_ids(own, project_id)
    assert {s["id"] for s in cardio} <= held["cardiology"]
    assert held["cardiology"].isdisjoint(held["general_medicine"])
    # The unknown texts are spread by the hash: both reviewers get some.
    assert held["general_medicine"] and held["cardiology"] - {s["id"] for s in cardio}
