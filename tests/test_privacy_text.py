"""Text de-identification against the real Presidio analyzer and spaCy model."""

from __future__ import annotations

from typing import Any

import pytest

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.text import TextDeidentifier

# Fake PHI of every Safe Harbor kind the recognizers cover, as it is written in notes.
CANARIES = {
    "PERSON": ["Dr. Elena Kowalczyk", "Mr. Ambrose Okonkwo", "son Bartholomew", "Marisol Pennington RN"],
    "DATE": ["7/22", "03/14/2021", "March 3, 2020", "22-Jul", "2019-11-05"],
    "AGE": ["94 yo", "aged 101"],
    "PHONE_NUMBER": ["(617) 555-0199", "410-322-1478", "pager 57319"],
    "EMAIL_ADDRESS": ["elena.k@example.org"],
    "US_SSN": ["123-45-6780"],
    "MEDICAL_RECORD_NUMBER": ["MRN: 00482913"],
    "HEALTH_PLAN_NUMBER": ["Insurance ID: HX-223347"],
    "ACCOUNT_NUMBER": ["Acct#: GRM-998871"],
    "LICENSE_NUMBER": ["License No: CLN-112239"],
    "STREET_ADDRESS": ["221B Baker Street", "14 Larchmont Ave Apt 3"],
    "LOCATION": ["Springfield, IL 62704"],
    "FACILITY": ["Ashbourne Memorial Hospital"],
    "URL": ["https://patient-portal.example.org/u/8812"],
    "IP_ADDRESS": ["10.23.181.7"],
    "VEHICLE_ID": ["1HGCM82633A004352"],
}
RULE_MODULES = (
    "addresses",
    "contact",
    "dates",
    "everyday",
    "identifiers",
    "kinds",
    "names",
    "places",
    "shared",
)

EPONYM_TEXT = (
    "Known Noonan syndrome, Cowden disease, Parkinson disease, early Alzheimer dementia, "
    "Crohn's colitis and Hodgkin lymphoma; Babinski sign negative."
)


@pytest.fixture(scope="module")
def deidentifier() -> TextDeidentifier:
    """The rules on their own (their conventions, span by span); tests/test_privacy_tagger.py covers
    the learned tagger and the two together."""
    return TextDeidentifier(DeidConfig(tagger="off"))


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
    text = "PT SEEN BY DR BRANCATI. SON BILL CALLED. 7/22 TRANSFER FROM ASHBOURNE HOSPITAL. 92 YO MAN."
    out = deidentifier.deidentify_batch([text])[0].text
    for value in ("BRANCATI", "BILL", "7/22", "ASHBOURNE", "92"):
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
    text = "Mrs. Wilhelmina Castellanos (DOB 04/12/1950) called 617-555-0142 from Boston, MA 02139."
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
    config = DeidConfig(score_threshold=0.95, tagger="off")  # the rules' scores; the tagger has its own
    strict = TextDeidentifier(config)
    text = "Discussed with son Bartholomew today."
    result = strict.deidentify_batch([text])[0]
    assert "Bartholomew" in result.text  # below the raised threshold: left in ...
    assert result.confidence < 0.9  # ... but flagged for review
    assert deidentifier.deidentify_batch([text])[0].confidence == 1.0


def test_deny_and_allow_lists() -> None:
    config = DeidConfig(deny_list=["Wexbridge"], allow_list=["Bartholomew"])
    result = TextDeidentifier(config).deidentify_batch(["Moved to Wexbridge 2; son Bartholomew aware."])[0]
    assert "Wexbridge" not in result.text
    assert "Bartholomew" in result.text


@pytest.mark.parametrize(
    ("text", "values"),
    [
        # An address block after an address cue, through unit, town, country and postal code lines.
        (
            "Please post the card to Lindqvistgatan 17\n Suite 40\n SKOGBY\n Sweden 41233 before Friday.",
            ["Lindqvistgatan 17", "Suite 40", "SKOGBY", "Sweden 41233"],
        ),
        (
            "Our office is located at Talvikatu 8 Apt. 12, Vaara, Finland.",
            ["Talvikatu 8", "Apt. 12", "Vaara"],
        ),
        ("Meet me at the corner of Ringstrasse 12 and Oakhollow Lane.", ["the corner of Ringstrasse 12"]),
        ("Address: 7 Ul. Brzozowa 44, Łódź", ["Brzozowa 44", "Łódź"]),
        # Everyday prose: foreign names, firms, job titles, countries and nationalities.
        ("Have you heard Radomir T Wielgosz speak yet?", ["Radomir T Wielgosz"]),
        (
            "I used to work for Brightwater Technologies as Senior payroll clerk.",
            ["Brightwater", "payroll clerk"],
        ),
        ("The founders were Ashworth, Pemberton and Lyle.", ["Ashworth", "Pemberton", "Lyle"]),
        ("Suppliers: Tarn, Holloway and Pike Ltd. were late.", ["Tarn, Holloway and Pike Ltd"]),
        (
            "harriet berg  payroll clerk  nordhavn traders  4 fjordgata  bodø  mobile: 412 55 901",
            ["harriet berg", "payroll clerk", "nordhavn traders", "4 fjordgata", "bodø"],
        ),
        ("I grew up in Latvia and we are proud Latvians.", ["Latvia", "Latvians"]),
        ("signed by gretchen kovacevic yesterday", ["gretchen kovacevic"]),
        (
            "Sometimes people call me Tovah. I grew up in Ærøskøbing, and I'm 34 y/o.",
            ["Tovah", "Ærøskøbing", "34"],
        ),
    ],
)
def test_everyday_writing(deidentifier: TextDeidentifier, text: str, values: list[str]) -> None:
    out = deidentifier.deidentify_batch([text])[0].text
    for value in values:
        assert value not in out


def test_everyday_rules_leave_clinical_notes_alone(deidentifier: TextDeidentifier) -> None:
    # Address cues, nationalities and job words in a bedside note name no one.
    text = (
        "Pt returned to 12 peep overnight, sats 95%. Spanish speaking, interpreter paged. "
        "Sent to CT at 1400, tolerated well. Social worker and nurse at bedside; plan per MD."
    )
    result = deidentifier.deidentify_batch([text])[0]
    assert result.text == text


LOWER_CASE_TEXTS = [
    "pt resting comfortably, vss, afebrile. wife at bedside, updated on plan. will cont to monitor.",
    "my mother was told she has a heart murmur and i want to know what that means for her",
    "seen on march 3 and again last week; he lives near the river with his son.",
    "can a child with asthma play football at school on monday",
]


def test_texts_that_skip_the_model_would_gain_nothing_from_it(deidentifier: TextDeidentifier) -> None:
    """Texts without capitals skip spaCy: run it anyway and check that none of its entities counts."""
    from presidio_analyzer.nlp_engine import NlpArtifacts

    from medcurate.privacy.recognizers import FilteredSpacyRecognizer

    nlp = deidentifier.analyzer.nlp_engine.nlp["en"]
    recognizer = FilteredSpacyRecognizer()
    skipped = [text for text in LOWER_CASE_TEXTS if not recognizer.needs_model(text)]
    assert skipped
    for doc in nlp.pipe(skipped):
        artifacts = NlpArtifacts(list(doc.ents), None, [], [], None, "en")
        assert recognizer.analyze(doc.text, recognizer.supported_entities, artifacts) == []
    assert recognizer.needs_model("visited by maria de la cruz")  # a particle can make a name
    assert recognizer.needs_model("Seen today.")


def test_candidates_are_what_presidio_analyze_returns(deidentifier: TextDeidentifier) -> None:
    """The hot path calls the recognizers itself; the AnalyzerEngine stays usable and agrees."""
    texts = [
        f"Seen today; {c} noted. Wife Marisol at bedside, from Springfield."
        for cs in CANARIES.values()
        for c in cs
    ]
    for text, artifacts in zip(texts, deidentifier._artifacts(texts), strict=True):
        expected = deidentifier.analyzer.analyze(
            text, language="en", nlp_artifacts=artifacts, score_threshold=deidentifier.config.review_floor
        )
        got = deidentifier.analyze(text, artifacts)
        assert [(r.start, r.end, r.entity_type, r.score) for r in got] == [
            (r.start, r.end, r.entity_type, r.score) for r in expected
        ]


def test_drug_names_make_a_query_clinical() -> None:
    # A drug stem marks health writing, where the everyday proper-noun rules stay out ("Zyrtec").
    from medcurate.privacy.recognizers import ClinicalRecognizer, everyday

    text = "Can I take ibuprofen and Zyrtec together?"
    assert not everyday(text)
    assert list(ClinicalRecognizer().spans(text)) == []
    assert everyday("I moved in April to Oslo.")


def test_vectorised_ner_decoding_finds_what_spacy_finds(deidentifier: TextDeidentifier) -> None:
    """`GreedyNer` replaces spaCy's decoding loop: same entities, whitespace, edges and empty docs."""
    from medcurate.privacy.ner_decode import GreedyNer

    nlp = deidentifier.analyzer.nlp_engine.nlp["en"]
    decoder = GreedyNer.create(nlp)
    assert decoder is not None
    texts = [
        "",
        "Boston",
        "  \n",
        "Seen by Dr. Elena Kowalczyk at Massachusetts General Hospital on March 3, 2020.",
        "Wife Marisol   Pennington\n\nvisited from New York City; son Bartholomew called Google Inc. in Paris",
        "The Nigerian-born patient met Helmut Kohl and the Red Cross in Geneva last Tuesday, 5 pm.",
        *(f"{c} noted. Plan unchanged." for cs in CANARIES.values() for c in cs),
        EPONYM_TEXT * 20,
    ]

    def entities(docs: Any) -> list[list[tuple[int, int, str]]]:
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]

    for batch_size in (1, 4, 128):
        assert entities(decoder.pipe(texts, batch_size)) == entities(nlp.pipe(texts, batch_size=batch_size))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Ann-Louise and ANN met Louise; ann_b, ann2, Anna.", {"ann", "louise", "ann-louise"}),
        ("O'Dowd saw o'dowd and Dowd's son; Peña and PENA.", {"o'dowd", "dowd", "pena"}),
        ("smith- smith-jones Smith", {"smith-", "smith"}),
        ("Zoë and zoe", {"zoe"}),
        ("", {"ann"}),
    ],
)
def test_mentions_are_what_the_word_pattern_finds(text: str, words: set[str]) -> None:
    import re

    from medcurate.privacy.text import _mentions

    pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + r")\b", re.IGNORECASE)
    assert _mentions(text, words) == [match.span() for match in pattern.finditer(text)]


def test_clinical_note_conventions(deidentifier: TextDeidentifier) -> None:
    """In nursing notes the title stays (i2b2/PhysioNet), ventilator and score fractions are no
    dates, drug and device words are no names, and wards named after people are places."""
    text = (
        "Pt changed to Levophed, remains in Afib. Dr. Okonkwo aware. MS changes noted.\n"
        "PSV increased to 10/5 overnight, pain 6/10, 3/6 SEM. Vent settings A/C 750 Rate 10 Peep 5 "
        "FiO2 40%.\nInsulin per U Maryland scale. Plan: transfer to Castellano 2 tomorrow."
    )
    result = deidentifier.deidentify_batch([text])[0]
    redacted = {text[s.start : s.end] for s in result.spans}
    assert "Okonkwo" in redacted and "Dr. Okonkwo" not in redacted
    assert {"U Maryland", "Castellano"} <= redacted
    for kept in ("Levophed", "Afib", "MS changes", "10/5", "6/10", "3/6", "750 Rate", "Dr."):
        assert kept in result.text, kept


def test_a_question_takes_the_title_with_the_name(deidentifier: TextDeidentifier) -> None:
    """PII annotation of questions and prose counts the title as part of the name."""
    text = "Dosing of apixaban for a 70yo pt with CKD, seen by Dr. Okonkwo at MRN: #QX-448812?"
    assert {"Dr. Okonkwo", "#QX-448812"} <= _redacted(deidentifier, text)


def _redacted(deidentifier: TextDeidentifier, text: str) -> set[str]:
    result = deidentifier.deidentify_batch([text])[0]
    return {text[s.start : s.end] for s in result.spans}


def test_us_towns_before_their_state_or_after_a_place_word(deidentifier: TextDeidentifier) -> None:
    """A town (GeoNames, 15,000+ people) is PHI; its state is not (Safe Harbor keeps states)."""
    upper = "PT HAS HX OF AVR (?OLD RECORDS FROM HAGERSTOWN, MD). WILL CALL FAMILY. IN NORMAL SINUS RHYTHM."
    redacted = _redacted(deidentifier, upper)
    assert "HAGERSTOWN" in redacted
    assert not any("MD" in r or "NORMAL" in r for r in redacted)
    upper = "LIVES IN RICHMOND WITH WIFE. TRANSFERRED TO MOBILE UNIT, THEN FROM SURPRISE VISIT TO ICU."
    redacted = _redacted(deidentifier, upper)
    assert "RICHMOND" in redacted  # a large city, though WordNet lists it
    assert not any("MOBILE" in r or "SURPRISE" in r for r in redacted)
    mixed = "Niece, Ada Lindqvist of Gaithersburg visited today. Pt given a tour of this frederick maryland's unit."
    redacted = _redacted(deidentifier, mixed)
    assert {"Gaithersburg", "frederick"} <= redacted
    assert not any("maryland" in r for r in redacted)


def test_years_of_past_events_in_a_clinical_history() -> None:
    """In a multi-line note the year of a past event dates the patient (PhysioNet/i2b2 mark it);
    lab values stay, a one-line question keeps its year, and the rule can be switched off."""
    note = "PMH: AMI 1998; CABG 03, CVA in 87 and 91, colectomy 2011.\nLabs: K 4.1, Ca 10.2, Mg 18.\n"
    question = "Best treatment for a patient with lupus diagnosed in 2019 and CKD?"
    on = TextDeidentifier(DeidConfig(tagger="off"))
    redacted = _redacted(on, note)
    assert {"1998", "03", "87 and 91", "2011"} <= redacted
    assert not any(r in ("10.2", "10", "18", "4.1") for r in redacted)
    assert _redacted(on, question) == set()
    off = TextDeidentifier(DeidConfig(history_years=False, tagger="off"))
    assert not {"1998", "03", "2011"} & _redacted(off, note)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Nursing note \n2->3 dec, 97  0700-1900\nNeuro: alert", "2->3 dec, 97"),
        ("lived alone until admission in oct. then moved", "oct."),
        ("son visited.(617 555 01992) please call", "(617 555 01992"),
        ("A ninety-three year old woman, fell at home.", "ninety-three"),
    ],
)
def test_written_date_and_phone_variants(deidentifier: TextDeidentifier, text: str, value: str) -> None:
    assert value in _redacted(deidentifier, text)


def test_litres_and_clock_times_are_no_dates_or_names(deidentifier: TextDeidentifier) -> None:
    redacted = _redacted(deidentifier, "Weaned to 2-3 L NC on 2-3 L by 4 o'clock, sats 95%. may go home.")
    assert not any(r in ("2-3", "o'clock", "may") for r in redacted)


def test_irish_surnames_and_surnames_before_credentials(deidentifier: TextDeidentifier) -> None:
    text = (
        "Pain controlled. Dr. o malley and Dr. Lindqvist in room. cash counted (k. tran and m. o'hara). "
        "Known Parkinson disease.\nMaria Parkinson RN\n"
    )
    result = deidentifier.deidentify_batch([text])[0]
    redacted = {text[s.start : s.end] for s in result.spans}
    assert {"o malley", "m. o'hara"} <= redacted
    assert any(r.endswith("Parkinson") and r.startswith("Maria") for r in redacted)
    assert "Parkinson disease" in result.text  # the eponym stays where it names a disease


def test_places_named_by_their_kind_of_name(deidentifier: TextDeidentifier) -> None:
    """Hospital-name words in any case, medical-centre initials, regions of a state and an
    employer; not "a good rehab" or a word of the language as employer."""
    text = (
        "Pt to go to rehab(good samaritan Memorial) today. Earlier TAKEN TO FAIRVIEW REGIONAL WHERE "
        "ENZYMES ROSE, W/U BY HCMC. Had a bed @ St J. but declined. Said: i'm at the general hospital. "
        "Lives on the North Shore with wife, who is CEO of Zylotech. Needs a good rehab. Works at home."
    )
    redacted = _redacted(deidentifier, text)
    for value in ("good samaritan Memorial", "HCMC", "North Shore", "Zylotech"):
        assert any(value in r for r in redacted), value
    assert any(r.startswith("FAIRVIEW") and r.endswith("REGIONAL") for r in redacted)
    assert not any("good rehab" in r or r == "home" for r in redacted)


def test_a_state_alone_stays_in_clinical_notes(deidentifier: TextDeidentifier) -> None:
    """Safe Harbor keeps states; questions and prose follow PII annotation and redact them."""
    note = (
        "Pt resting, VSS, HR 80s, BP 120/70. Social: sister lives in Oregon.\n"
        "Plan: cont abx, pt to call sister in Portland re d/c.\n"
    )
    redacted = _redacted(deidentifier, note)
    assert "Portland" in redacted and "Oregon" not in redacted
    assert "Oregon" in _redacted(deidentifier, "I moved to Oregon last year and my knee still hurts.")


def test_capitalised_census_surnames_are_people_in_mixed_case(deidentifier: TextDeidentifier) -> None:
    """A surname without a cue is still a person; eponymous scores, scales and devices are not."""
    note = (
        "Neuro: Riker scale 4, Gleason score 7 per old records. Trached with #6 Shiley.\n"
        "Plan: Okafor aware of plan, will follow up with Szymanski re: wound care.\n"
    )
    redacted = _redacted(deidentifier, note)
    assert {"Okafor", "Szymanski"} <= redacted
    assert not {"Riker", "Gleason", "Shiley"} & redacted


def test_a_lone_first_name_in_a_lower_case_note(deidentifier: TextDeidentifier) -> None:
    note = "pt resting, vss. plan discussed with rosalind, wife at bedside.\nwill cont lasix, ina 2l.\n"
    redacted = _redacted(deidentifier, note)
    assert "rosalind" in redacted
    assert not any(r in ("ina", "lasix", "wife") for r in redacted)


@pytest.mark.parametrize(
    ("pattern", "digit", "prefixes"),
    [
        (r"\b\d{3}-\d{4}\b", True, None),
        (r"\b(?:mrn|id)\s*(?=[A-Z0-9]*\d)([A-Z0-9]{3,})", True, ("id", "mrn")),  # lookahead needs a digit
        (r"(?:\d+|[a-z]+)@x", False, ("@x",)),  # one branch has no digit; every match holds "@x"
        (r"(?<![\w/])\b(?:dr|doctor)\.?\s+([A-Z][a-z]+)", False, ("doctor", "dr")),
        (r"x\d*y", False, None),  # zero repeats allowed; "x" alone is too short to look up
        (r"[0-9a-f]{8}", False, None),  # hex letters are no digits
        (r"(?:\b(?:sons?|wife)\b[\s,]*)+(\w+)", False, ("son", "wife")),  # "sons" starts with "son"
        (r"\b(?-i:St|MT)\.?\s+\w+", False, ("mt", "st")),
    ],
)
def test_regex_gates_are_read_off_the_pattern(
    pattern: str, digit: bool, prefixes: tuple[str, ...] | None
) -> None:
    import re

    from medcurate.privacy.regex_gate import gate

    rule = gate(re.compile(pattern, re.IGNORECASE))
    assert (rule.digit, rule.literals) == (digit, prefixes)


def test_regex_gates_never_skip_a_match() -> None:
    """Every pattern the recognizers scan, on texts of every kind: where the gate says a pattern
    cannot match, it does not."""
    import re

    from medcurate.privacy import recognizers, rules
    from medcurate.privacy.regex_gate import gate, may_match

    texts = [c for cs in CANARIES.values() for c in cs] + [EPONYM_TEXT]
    texts += [
        "PMH: MI 1998; CABG 03. Daughter Ana at bedside, son-in-law called. MRN: #QX-448812",
        "Insurance ID HX-22 and Acct# 99; lives in Richmond, VA 23220. Dr. O'Hara, RN aware.",
        "I'm Harriet, call me at +46 8 928 571 38; address: Mühlgasse 4, 4020 LINZ, Austria.",
        "TRANSFERRED FROM ST. JUDE TO MERCY HOSPITAL @ 2000. PAGER 57319. ſt Kelvin K",
        "İNSURANCE 4471 for the daughter; Kent Kowalczyk, RN",  # the regex engine folds these to ASCII
    ]
    patterns = [p for *_, p, _ in recognizers.ClinicalRecognizer().patterns]
    for module in (recognizers, *(getattr(rules, name) for name in RULE_MODULES)):
        patterns += [v for v in vars(module).values() if isinstance(v, re.Pattern)]
    gated = [p for p in patterns if gate(p).digit or gate(p).literals]
    assert len(gated) > 40  # the analysis still works on this Python
    for pattern in patterns:
        for text in texts:
            if not may_match(pattern, text):
                assert pattern.search(text) is None, (pattern.pattern[:60], text)


def test_every_span_names_its_rule(deidentifier: TextDeidentifier) -> None:
    """`source` says which rule or model found a span ("clinical:<rule>", "spacy:<label>"); rules
    that found the same text are joined with "+"."""
    import re

    note = "PMH: MI 1998, CABG 03.\nSeen on 03/14/2024, call 617-555-0199.\nWife at bedside."
    prose = "Yesterday Elena Kowalczyk met her friends in Lisbon and Porto."
    [first, second] = deidentifier.deidentify_batch([note, prose])
    sources = {note[s.start : s.end]: s.source.split("+") for s in first.spans}
    assert "clinical:history_year" in sources["1998"]
    assert "clinical:history_year" in sources["03"]
    assert "clinical:date_slash" in sources["03/14/2024"]
    assert "clinical:phone_us" in sources["617-555-0199"]
    named = {prose[s.start : s.end]: s.source.split("+") for s in second.spans}
    assert any(source.startswith("spacy:") for spans in named.values() for source in spans), named
    for span in first.spans + second.spans:
        assert all(
            re.fullmatch(r"(?:clinical|spacy):[A-Za-z_0-9]+|[a-z_]+", p) for p in span.source.split("+")
        )


def test_a_bedside_paragraph_keeps_clinical_conventions(deidentifier: TextDeidentifier) -> None:
    """A one-paragraph respiratory note is a clinical record: the title and the kind of place stay
    outside the name (i2b2/PhysioNet), as in a note of several lines."""
    text = (
        "Pt weaned to PS 10 peep 5 this evening, suctioned for thick tan secretions, sats 96%. "
        "Dr Vasquelle aware. Plan transfer to Harrowgate Medical Center in am."
    )
    redacted = _redacted(deidentifier, text)
    assert {"Vasquelle", "Harrowgate"} <= redacted
    result = deidentifier.deidentify_batch([text])[0]
    for kept in ("Dr ", "Medical Center", "secretions"):
        assert kept in result.text, kept


def test_words_notes_mangle_are_not_coined_names() -> None:
    """Misspelt, cut-short and derived words are explained by the language; syllable names are not."""
    from medcurate.privacy.vocab import coined, near_english

    for mangled in ("vancomyicn", "ambulatd", "diltiaz", "apropr", "ambulted"):
        assert near_english(mangled), mangled
    for word in ("extubated", "arousable", "prerenal", "painfree", "without", "Kowalski"):
        assert not coined(word), word
    for name in ("Quorvant", "braskovy", "Yelvana", "DRAVMELOK"):
        assert coined(name), name


def test_coined_words_follow_the_tagger_threshold() -> None:
    """A doubtful tagger span of coined words in a clinical note stands from the tagger's own
    threshold up: a lower threshold (more recall) admits more of them, a higher one fewer."""
    from medcurate.privacy.text import PhiSpan, _unconfirmed_allowed

    text = "Pt seen on rounds, afebrile overnight. Quorvant family updated at bedside. Plan as above."
    start = text.index("Quorvant")
    span = PhiSpan(start, start + len("Quorvant"), "PERSON", 0.4, "tagger:test")
    assert _unconfirmed_allowed(text, span, tagger_threshold=0.3)
    assert not _unconfirmed_allowed(text, span, tagger_threshold=0.5)
    plain = text.index("bedside")
    word = PhiSpan(plain, plain + len("bedside"), "PERSON", 0.4, "tagger:test")
    assert not _unconfirmed_allowed(text, word, tagger_threshold=0.3)


def test_unknown_names_in_clinical_phrasings(deidentifier: TextDeidentifier) -> None:
    """Coined names where the note's own words say who is meant: the subject of an age statement,
    the patient cue, a record's header line."""
    for text, name in (
        ("DRAVMELOK IS A 64 YO MAN ADMITTED WITH CHEST PAIN.", "DRAVMELOK"),
        ("PATIENT QUORVANT SEEN AND EXAMINED, AGREE WITH PLAN.", "QUORVANT"),
        ("pt yelvana braskovy c/o sob x2d, mrn 5520193", "braskovy"),
        ("QUORVANT, Yelvana - MRN 4471093", "Yelvana"),
    ):
        result = deidentifier.deidentify_batch([text])[0]
        assert name.lower() not in result.text.lower(), text
