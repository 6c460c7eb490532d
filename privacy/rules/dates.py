"""Dates, years and ages: every element of a date but the year (Safe Harbor), years of past
events in clinical histories (the i2b2 and PhysioNet guidelines), ages over 89, and any age in
everyday writing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.shared import (
    _DAY,
    _MONTH,
    _YEAR,
    MEDIUM,
    STRONG,
    WEAK,
    Span,
)

# The year of a past event in a clinical history ("PMH: AMI 1998, CABG 03", "TIA in 87 and 91",
# "MI in the 1970s"): with the event it dates the patient. A two-digit year must end its list item, so that
# lab values ("Ca 9.8") and sizes stay.
_HISTORY_EVENT = (
    r"(?:mi|ami|n?stemi|cva|tia|cabg|ptca|pci|stents?|avr|mvr|aaa|dvt|cancer|carcinoma|lymphoma|"
    r"leukemia|stroke|surgery|repair|removal|resection|transplant|fx|fracture|amputation|chemo|xrt|"
    r"radiation|bypass|ablation|ppm|aicd|pacemaker|chole|dx|diagnosed|[a-z]+ectomy|[a-z]+plasty|"
    r"[a-z]+otomy|[a-z]+ostomy)"
)


_TWO_DIGIT_YEAR_END = r"(?=[ \t]*(?:[,;)]|\.(?!\d)|and\b|&|\n|$))"


_HISTORY_YEAR = re.compile(
    rf"\b(?:{_HISTORY_EVENT}|ca(?=[ \t]+(?:19|20)\d\d))[ \t]*(?:(?:in|since|during|of)[ \t]+)?"
    rf"(?:the[ \t]+)?((?:19|20)\d\d(?:'?s)?(?!\d)|\d\d{_TWO_DIGIT_YEAR_END}"
    rf"(?:[ \t]*(?:and|&)[ \t]*\d\d\b(?![\d.%/:]))?)",
    re.IGNORECASE,
)


# Any age, in everyday writing only (a quasi-identifier there; clinical notes keep ages under 90).
_ANY_AGE = re.compile(
    r"\b(\d{1,3})(?=[- ]?(?:y/?o\b|y\.o\.|years?[- ]old\b|yrs?[- ]old\b))|"
    r"\b(?:turn(?:s|ed|ing)?|age\s+of|aged|(?:he|she|i|you|they)\s+(?:was|were|am|is|are))\s+(\d{1,3})\b"
    r"(?![.,]?\d|\s*(?!years?\b|yrs?\b|y/?o\b)[^\W\d_%]|\s*%)",
    re.IGNORECASE,
)


def _everyday_ages(text: str) -> Iterator[Span]:
    """Any age, in everyday writing (a quasi-identifier there; clinical notes keep ages under 90)."""
    for match in scan(_ANY_AGE, text):
        group = 1 if match.group(1) else 2
        yield Span("AGE", match.start(group), match.end(group), WEAK)


PATTERN_RULES = [
    # Dates: every element but the year (the year too where it is written inside the date).
    Rule(
        "date_mdy_dash",
        "DATE",
        STRONG,
        r"\b(?:0?[1-9]|1[0-2])-(?:[12]\d|3[01]|0?[1-9])-(?:\d{4}|\d{2})\b",
        examples=(("Seen 3-14-2021 in clinic.", "3-14-2021"),),
        counterexamples=("Take 1-2-3 tabs daily.",),
    ),
    Rule(
        "date_slash",
        "DATE",
        STRONG,
        r"(?<![\d/.])(?!([1-9])/\1\b)(?!1/[234](?![\d/])|[23]/[34](?![\d/]))(?:0?[1-9]|1[0-2])/"
        r"(?:[12]\d|3[01]|0?[1-9])(?:/(?:\d{4}|\d{2}))?(?![\d/%]|\.\d|\s*%)",
        examples=(("Follow-up on 11/05/2019 as planned.", "11/05/2019"),),
        counterexamples=("Pain rated 3/10 this morning.",),
    ),
    Rule(
        "date_iso",
        "DATE",
        STRONG,
        r"\b(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:[12]\d|3[01]|0?[1-9])\b(?:[ T]\d\d?:\d\d(?::\d\d)?)?",
        examples=(("Collected 2021-07-04 08:30 at the lab.", "2021-07-04 08:30"),),
        counterexamples=("Batch 2021-13-45 discarded.",),
    ),
    Rule(
        "date_dmy_dot",
        "DATE",
        STRONG,
        r"\b(?:[12]\d|3[01]|0?[1-9])\.(?:0?[1-9]|1[0-2])\.(?:19|20)?\d\d\b",
        examples=(("Born 24.12.1961 in a small town.", "24.12.1961"),),
        counterexamples=("Version 2.10.4 installed.",),
    ),
    Rule(
        "date_month_day",
        "DATE",
        STRONG,
        rf"\b{_MONTH}\.?\s*{_DAY}\b(?:,?\s*{_YEAR}\b)?",
        examples=(("Admitted March 3, 2020 for pneumonia.", "March 3, 2020"),),
        counterexamples=("The march of time.",),
    ),
    # "14 Mar, 19", "3->4 oct, 97": a day or a range of days, the month, a two-digit year.
    Rule(
        "date_day_month",
        "DATE",
        STRONG,
        rf"\b(?:{_DAY}\s*(?:-|->|–|to|&)\s*)?{_DAY}(?:\s+of)?[\s-]*{_MONTH}\b\.?"
        rf"(?:,?[\s-]*{_YEAR}\b|,\s*\d\d\b(?![\d.:%/]|\s*(?:mg|mcg|ml|cc|units?|%)))?",
        examples=(("Seen on 14 Feb, 97 by the team.", "14 Feb, 97"),),
        counterexamples=("Gave 14 mg today.",),
    ),
    Rule(
        "date_month_year",
        "DATE",
        STRONG,
        rf"\b{_MONTH}\.?,?\s+(?:of\s+)?{_YEAR}\b",
        examples=(("Diagnosed in June 2018 by her GP.", "June 2018"),),
        counterexamples=("June was warm and dry.",),
    ),
    # "until feb.", "since March": a month named on its own after a time word ("may" and "march"
    # only capitalised: they are also verbs).
    Rule(
        "month_after_time_word",
        "DATE",
        MEDIUM,
        r"\b(?:in|since|until|till|by|early|late|mid|end\s+of|beginning\s+of)[\s-]+"
        r"((?:jan(?:uary)?|feb(?:ruary)?|(?-i:Mar(?:ch)?|MAR(?:CH)?)|apr(?:il)?|(?-i:May|MAY)|june?|july?|"
        r"aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?)",
        group=1,
        examples=(("Symptoms since March.", "March."),),
        counterexamples=("Patient may walk in the hallway.",),
    ),
    Rule(
        "day_of_month",
        "DATE",
        MEDIUM,
        r"\b(?:on|since|until|till|by|it'?s|is|was)\s+the\s+((?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th))\b(?=\s*[.,;:)\"]|\s*$)",
        group=1,
        examples=(("Her appointment is on the 21st.", "21st"),),
        counterexamples=("He was the 1st in line.",),
    ),
    Rule(
        "date_month_slash_year",
        "DATE",
        MEDIUM,
        r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d)(?![\d/])",
        examples=(("MI in 8/87 treated medically.", "8/87"),),
        counterexamples=("Dose 5/20 mg daily.",),
    ),
    # MI '92, CVA 74': a year (the apostrophe is no part of it); not "HOB 30'" or "10-15'".
    Rule(
        "apostrophe_year",
        "DATE",
        MEDIUM,
        r"(?<=')(?<![\w']')\d\d\b(?!')|(?<=[A-Za-z] )\d\d(?='(?![\w']))",
        examples=(("MI '92, stable since.", "92"),),
        counterexamples=("Head of bed at 30 degrees.",),
    ),
    Rule(
        "holiday",
        "DATE",
        MEDIUM,
        r"\b(?:christmas|thanksgiving|easter|new\s+year'?s(?:\s+(?:day|eve))?|memorial\s+day|"
        r"labor\s+day|independence\s+day|halloween|valentine'?s\s+day)\b",
        examples=(("Home for Thanksgiving with family.", "Thanksgiving"),),
        counterexamples=("Thankful for the visit.",),
    ),
    # Ages over 89 (Safe Harbor lets younger ages stay).
    Rule(
        "age_over_89",
        "AGE",
        STRONG,
        r"\b(9\d|1[0-2]\d)(?=\s*(?:-|\s)?(?:y/?o\b|y\.o\.|yrs?\b|years?\b|year-old|yr-old|yo\b|"
        r"[- ]?year[- ]old))",
        group=1,
        examples=(("Pt is a 92 yo woman.", "92"),),
        counterexamples=("Pt is a 62 yo woman.",),
    ),
    Rule(
        "age_label_over_89",
        "AGE",
        STRONG,
        r"\b(?:age[ds]?|aged)\s*:?\s*(9\d|1[0-2]\d)\b",
        group=1,
        examples=(("Age: 94, lives alone.", "94"),),
        counterexamples=("Age: 54, lives alone.",),
    ),
    Rule(
        "age_sex_over_89",
        "AGE",
        MEDIUM,
        r"\b(9\d|1[0-2]\d)\s*(?:m|f|male|female|man|woman|gentleman|lady)\b",
        group=1,
        examples=(("91 F with CHF.", "91"),),
        counterexamples=("61 F with CHF.",),
    ),
    # Written out: "ninety-two year old", "one hundred and one years old".
    Rule(
        "age_words_over_89",
        "AGE",
        STRONG,
        r"\b((?:ninety|one\s+hundred(?:\s+and)?)(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?)"
        r"(?=[\s-]*(?:y/?o\b|years?\b|yrs?\b|year-old))",
        group=1,
        examples=(("a ninety-two year old man", "ninety-two"),),
        counterexamples=("a sixty-two year old man",),
    ),
]


RULES = [
    # Every year, where the configuration asks for it (Safe Harbor lists years as PHI).
    Rule(
        "any_year",
        "DATE",
        MEDIUM,
        pattern=re.compile(r"(?<![\w/.-])(?:19\d\d|20\d\d|'\d\d)(?![\w/.-])"),
        option="redact_years",
        examples=(("Moved here in 1987 with family.", "1987"),),
        counterexamples=("Dose 19870 units.",),
    ),
    # Clinical notes date a patient's past events by year (PhysioNet and i2b2 mark them); health
    # questions and queries ask about them ("diagnosed in 2021?"), and there they stay.
    Rule(
        "history_year",
        "DATE",
        MEDIUM,
        pattern=_HISTORY_YEAR,
        group=1,
        checked=False,
        kinds=("record",),
        option="history_years",
        examples=(("PMH: AMI 1998, CABG 03.\nStable.", "1998"),),
        counterexamples=("Ca 9.8 today.\nStable.",),
    ),
    Rule(
        "any_age",
        "AGE",
        WEAK,
        function=_everyday_ages,
        kinds=("cased", "everyday"),
        examples=(("My sister turned 34.", "34"),),
        counterexamples=("I have 3 cats.",),
    ),
]
