"""Text de-identification against the real Presidio analyzer and spaCy model."""

from __future__ import annotations

import pytest

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.text import TextDeidentifier

# Fake PHI of every Safe Harbor kind the recognizers cover, as it is written in notes.
CANARIES = {
    "PERSON": ["Dr. Elena Kowalczyk", "Mr. Thaddeus Okonkwo", "son Bartholomew", "Marisol Pennington RN"],
    "DATE": ["7/22", "03/14/2021", "March 3, 2020", "22-Jul", "2019-11-05"],
    "AGE": ["94 yo", "aged 101"],
    "PHONE_NUMBER": ["(617) 555-0199", "410-322-1419", "pager 54321"],
    "EMAIL_ADDRESS": ["elena.k@example.org"],
    "US_SSN": ["123-45-6789"],
    "MEDICAL_RECORD_NUMBER": ["MRN: 00482913"],
    "HEALTH_PLAN_NUMBER": ["Insurance ID: HX-223344"],
    "ACCOUNT_NUMBER": ["Acct#: GRM-998877"],
    "LICENSE_NUMBER": ["License No: CLN-112233"],
    "STREET_ADDRESS": ["221B Baker Street", "14 Larchmont Ave Apt 3"],
    "LOCATION": ["Springfield, IL 62704"],
    "FACILITY": ["Calvert Memorial Hospital"],
    "URL": ["https://patient-portal.example.org/u/8812"],
    "IP_ADDRESS": ["10.23.181.7"],
    "VEHICLE_ID": ["1HGCM82633A004352"],
}
EPONYM_TEXT = (
    "Known Noonan syndrome, Cowden disease, Parkinson disease, early Alzheimer dementia, "
    "Crohn's colitis and Hodgkin lymphoma; Babinski sign negative."
)


@pytest.fixture(scope="module")
def deidentifier() -> TextDeidentifier:
    return TextDeidentifier(DeidConfig())


def _value(canary: str) -> str:
    """The PHI part of a canary (the label words before it are context, not PHI)."""
    for prefix in (
        "Dr. ",
        "Mr. ",
        "son ",
        "pager ",
        "aged ",
        "MRN: ",
        "Insurance ID: ",
        "Acct#: ",
        "License No: ",
    ):
        if canary.startswith(prefix):
            return canary[len(prefix) :]
    return canary.removesuffix(" RN").removesuffix(" yo")


@pytest.mark.parametrize(("entity", "canary"), [(e, c) for e, cs in CANARIES.items() for c in cs])
def test_canary_phi_is_removed(deidentifier: TextDeidentifier, entity: str, canary: str) -> None:
    text = f"Seen today; {canary} noted in chart. Plan unchanged."
    result = deidentifier.deidentify_batch([text])[0]
    value = _value(canary)
    assert value not in result.text
    start = text.index(value)
    covered = [s for s in result.spans if s.start < start + len(value) and start < s.end]
    assert covered, f"{entity} canary not covered"


def test_upper_case_note(deidentifier: TextDeidentifier) -> None:
    text = "PT SEEN BY DR RUSSO. SON BILL CALLED. 7/22 TRANSFER FROM CALVERT HOSPITAL. 92 YO MAN."
    out = deidentifier.deidentify_batch([text])[0].text
    for value in ("RUSSO", "BILL", "7/22", "CALVERT", "92"):
        assert value not in out


def test_eponyms_survive(deidentifier: TextDeidentifier) -> None:
    result = deidentifier.deidentify_batch([EPONYM_TEXT])[0]
    assert result.text == EPONYM_TEXT
    assert result.spans == []


def test_phi_free_clinical_query_untouched(deidentifier: TextDeidentifier) -> None:
    text = "Guidelines for ACE inhibitors in a 55-year-old male with CKD and HTN, diagnosed in 2021?"
    result = deidentifier.deidentify_batch([text])[0]
    assert result.text == text
    assert result.confidence == 1.0


def test_capitalised_sentence_openers_are_not_places(deidentifier: TextDeidentifier) -> None:
    # The small model tags sentence-opening clinical words as places or organisations.
    text = "Dyspnea with chest pain fits. Oxygen saturation 93 percent on air.  Nebulised salbutamol given."
    [prose, name] = deidentifier.deidentify_batch([text, "Smith called about the results."])
    assert prose.text == text
    assert "Smith" not in name.text


def test_offsets_and_redactions_line_up(deidentifier: TextDeidentifier) -> None:
    text = "Mrs. Wilhelmina Castellanos (DOB 04/12/1950) called 617-555-0142 from Boston, MA 02115."
    result = deidentifier.deidentify_batch([text])[0]
    assert len(result.spans) == len(result.redactions)
    rebuilt, cursor = [], 0
    for span, redaction in zip(result.spans, result.redactions, strict=True):
        assert span.type == redaction["type"]
        assert 0 <= span.start < span.end <= len(text)
        assert set(redaction) == {"start", "end", "type", "score"}
        assert result.text[redaction["start"] : redaction["end"]] == f"<{span.type}>"
        rebuilt.append(text[cursor : span.start])
        rebuilt.append(result.text[redaction["start"] : redaction["end"]])
        cursor = span.end
    rebuilt.append(text[cursor:])
    assert "".join(rebuilt) == result.text
    assert "Castellanos" not in result.text and "617-555-0142" not in result.text


def test_surrogates_consistent_and_dates_shift_keeping_intervals() -> None:
    config = DeidConfig(operators={"PERSON": "surrogate", "DATE": "date_shift"}, surrogate_key="test-secret")
    deidentifier = TextDeidentifier(config)
    texts = [
        "Dr. Kowalczyk admitted her on 3/1/2021; Dr. Kowalczyk discharged her on 3/11/2021.",
        "Dr. Kowalczyk reviewed the case on 3/1/2021.",
    ]
    first, _ = deidentifier.deidentify_batch(texts, scopes=["patient-1", "patient-2"])
    assert "Kowalczyk" not in first.text
    names = [first.text[r["start"] : r["end"]] for r in first.redactions if r["type"] == "PERSON"]
    assert len(names) == 2 and names[0] == names[1]
    dates = [first.text[r["start"] : r["end"]] for r in first.redactions if r["type"] == "DATE"]
    assert len(dates) == 2 and "3/1/2021" not in dates
    from datetime import datetime

    parsed = [datetime.strptime(d, "%m/%d/%Y") for d in dates]
    assert (parsed[1] - parsed[0]).days == 10
    again = deidentifier.deidentify_batch([texts[0]], scopes=["patient-1"])[0]
    assert again.text == first.text


def test_low_scoring_candidates_lower_confidence(deidentifier: TextDeidentifier) -> None:
    config = DeidConfig(score_threshold=0.95)
    strict = TextDeidentifier(config)
    text = "Discussed with son Bartholomew today."
    result = strict.deidentify_batch([text])[0]
    assert "Bartholomew" in result.text  # below the raised threshold: left in ...
    assert result.confidence < 0.9  # ... but flagged for review
    assert deidentifier.deidentify_batch([text])[0].confidence == 1.0


def test_deny_and_allow_lists() -> None:
    config = DeidConfig(deny_list=["Quartermain"], allow_list=["Bartholomew"])
    result = TextDeidentifier(config).deidentify_batch(["Moved to Quartermain 2; son Bartholomew aware."])[0]
    assert "Quartermain" not in result.text
    assert "Bartholomew" in result.text


def test_clinical_note_conventions(deidentifier: TextDeidentifier) -> None:
    """In nursing notes the title stays (i2b2/PhysioNet), ventilator and score fractions are no
    dates, drug and device words are no names, and wards named after people are places."""
    text = (
        "Pt changed to Levophed, remains in Afib. Dr. Okonkwo aware. MS changes noted. "
        "PSV increased to 10/5 overnight, pain 6/10, 3/6 SEM. Vent settings A/C 750 Rate 10 Peep 5 "
        "FiO2 40%. Insulin per U Maryland scale. Plan: transfer to Castellano 2 tomorrow."
    )
    result = deidentifier.deidentify_batch([text])[0]
    redacted = {text[s.start : s.end] for s in result.spans}
    assert "Okonkwo" in redacted and "Dr. Okonkwo" not in redacted
    assert {"U Maryland", "Castellano"} <= redacted
    for kept in ("Levophed", "Afib", "MS changes", "10/5", "6/10", "3/6", "750 Rate", "Dr."):
        assert kept in result.text, kept
