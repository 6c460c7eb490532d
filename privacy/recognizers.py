"""Recognizers for PHI as it appears in clinical text, where Presidio's defaults fall short.

One `ClinicalRecognizer` runs every pattern in a single pass per document (cheap compared with
many separate recognizers), and `FilteredSpacyRecognizer` keeps spaCy's NER but distrusts it
where it is known to fail: UPPER CASE notes, medical acronyms and eponyms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from itertools import chain, pairwise
from typing import Any, ClassVar

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.lang.en.stop_words import STOP_WORDS

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.vocab import (
    COMMON_TOWN_WORDS,
    COUNTRIES,
    EPONYM_HEADS,
    EPONYMS,
    HOSPITAL_NAME_WORDS,
    MEDICAL_TERMS,
    NATIONALITIES,
    NOT_NAMES,
    OCCUPATIONS,
    US_REGIONS,
    US_STATES,
    first_names,
    is_english,
    is_name_word,
    is_plain_name,
    last_names,
    us_places,
)

STRONG = 0.85
SOURCE = "clinical"  # spans name their rule as "clinical:<rule>"; spaCy's as "spacy:<label>"
MEDIUM = 0.6
WEAK = 0.4
DOUBT = 0.2

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19\d\d|20\d\d|'\d\d)"
_STATE = "|".join(sorted(US_STATES, key=len, reverse=True))
_STATE_NAME = "|".join(sorted(US_STATES.values(), key=len, reverse=True))
_STREET_SUFFIX_WORDS = (
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|"
    r"ter|row|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|alley|loop|crescent|plaza|"
    r"heights|pike|turnpike|route|rte|expressway|freeway|broadway|walk|commons|crossing|run|ridge|"
    r"hill|hills|point|view|gardens|grove|green|park|landing|junction|mall|estates|manor|mews|"
    r"ramp|spur|station|summit|valley|villas?|ville|vista|way)"
)
# Capitalised or UPPER CASE only: "5 cc/hr" or "1 ct" in a note are not addresses.
_STREET_SUFFIX = (
    "(?-i:" + "|".join(f"{w.capitalize()}|{w.upper()}" for w in _STREET_SUFFIX_WORDS[3:-1].split("|")) + ")"
)
_CAP = r"(?-i:[A-Z])"
_FACILITY_HEAD = (
    r"(?:hospital|hosp|medical\s+center|med\s+ctr|medical\s+centre|health\s+center|health\s+system|"
    r"clinic|clinics|rehab|rehabilitation(?:\s+center)?|nursing\s+home|"
    r"nursing\s+facility|infirmary|institute|memorial|medical\s+group|cancer\s+center|"
    r"children'?s|gen|hospice|manor|care\s+center|surgical\s+center|urgent\s+care|"
    r"university\s+hospital|va\s+medical\s+center|pavilion|sanatorium)"
)
_ID_VALUE = r"(#?[A-Z0-9](?:[A-Z0-9]|[-/.](?=[A-Z0-9])){2,24})"

# (rule name, entity type, score, pattern, capture group holding the PHI)
_PATTERNS: list[tuple[str, str, float, str, int]] = [
    # Dates: every element but the year (the year too where it is written inside the date).
    ("date_mdy_dash", "DATE", STRONG, r"\b(?:0?[1-9]|1[0-2])-(?:[12]\d|3[01]|0?[1-9])-(?:\d{4}|\d{2})\b", 0),
    (
        "date_slash",
        "DATE",
        STRONG,
        r"(?<![\d/.])(?!([1-9])/\1\b)(?!1/[234](?![\d/])|[23]/[34](?![\d/]))(?:0?[1-9]|1[0-2])/"
        r"(?:[12]\d|3[01]|0?[1-9])(?:/(?:\d{4}|\d{2}))?(?![\d/%]|\.\d|\s*%)",
        0,
    ),
    (
        "date_iso",
        "DATE",
        STRONG,
        r"\b(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:[12]\d|3[01]|0?[1-9])\b(?:[ T]\d\d?:\d\d(?::\d\d)?)?",
        0,
    ),
    ("date_dmy_dot", "DATE", STRONG, r"\b(?:[12]\d|3[01]|0?[1-9])\.(?:0?[1-9]|1[0-2])\.(?:19|20)?\d\d\b", 0),
    ("date_month_day", "DATE", STRONG, rf"\b{_MONTH}\.?\s*{_DAY}\b(?:,?\s*{_YEAR}\b)?", 0),
    # "14 Mar, 19", "3->4 oct, 97": a day or a range of days, the month, a two-digit year.
    (
        "date_day_month",
        "DATE",
        STRONG,
        rf"\b(?:{_DAY}\s*(?:-|->|–|to|&)\s*)?{_DAY}(?:\s+of)?[\s-]*{_MONTH}\b\.?"
        rf"(?:,?[\s-]*{_YEAR}\b|,\s*\d\d\b(?![\d.:%/]|\s*(?:mg|mcg|ml|cc|units?|%)))?",
        0,
    ),
    ("date_month_year", "DATE", STRONG, rf"\b{_MONTH}\.?,?\s+(?:of\s+)?{_YEAR}\b", 0),
    # "09/14/09/18": two dates written as one range.
    (
        "date_pair",
        "DATE",
        MEDIUM,
        r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:[12]\d|3[01]|0?[1-9])/(?:0?[1-9]|1[0-2])/(?:[12]\d|3[01]|0?[1-9])(?![\d/])",
        0,
    ),
    # "until feb.", "since March": a month named on its own after a time word ("may" and "march"
    # only capitalised: they are also verbs).
    (
        "month_after_time_word",
        "DATE",
        MEDIUM,
        r"\b(?:in|since|until|till|by|early|late|mid|end\s+of|beginning\s+of)[\s-]+"
        r"((?:jan(?:uary)?|feb(?:ruary)?|(?-i:Mar(?:ch)?|MAR(?:CH)?)|apr(?:il)?|(?-i:May|MAY)|june?|july?|"
        r"aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?)",
        1,
    ),
    # "back to IR on 6-9 for embolisation": month-day after "on", not a range of litres or doses.
    (
        "date_on_month_day",
        "DATE",
        MEDIUM,
        r"\bon\s+((?:0?[1-9]|1[0-2])-(?:[12]\d|3[01]|0?[1-9]))(?=\s+(?:for|at|when|and|with|in)\b|[,.;)]|\s*$)",
        1,
    ),
    # "10/14.87": month/day.year; "on the 11th.", "it's the 21st": a day of the month.
    (
        "date_dotted_year",
        "DATE",
        STRONG,
        r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:[12]\d|3[01]|0?[1-9])\.\d\d(?![\d.])",
        0,
    ),
    (
        "day_of_month",
        "DATE",
        MEDIUM,
        r"\b(?:on|since|until|till|by|it'?s|is|was)\s+the\s+((?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th))\b(?=\s*[.,;:)\"]|\s*$)",
        1,
    ),
    (
        "date_month_slash_year",
        "DATE",
        MEDIUM,
        r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d)(?![\d/])",
        0,
    ),  # 8/87: month/year
    # MI '92, CVA 74': a year (the apostrophe is no part of it); not "HOB 30'" or "10-15'".
    ("apostrophe_year", "DATE", MEDIUM, r"(?<=')(?<![\w']')\d\d\b(?!')|(?<=[A-Za-z] )\d\d(?='(?![\w']))", 0),
    (
        "holiday",
        "DATE",
        MEDIUM,
        r"\b(?:christmas|thanksgiving|easter|new\s+year'?s(?:\s+(?:day|eve))?|memorial\s+day|"
        r"labor\s+day|independence\s+day|halloween|valentine'?s\s+day)\b",
        0,
    ),
    # Ages over 89 (Safe Harbor lets younger ages stay).
    (
        "age_over_89",
        "AGE",
        STRONG,
        r"\b(9\d|1[0-2]\d)(?=\s*(?:-|\s)?(?:y/?o\b|y\.o\.|yrs?\b|years?\b|year-old|yr-old|yo\b|"
        r"[- ]?year[- ]old))",
        1,
    ),
    ("age_label_over_89", "AGE", STRONG, r"\b(?:age[ds]?|aged)\s*:?\s*(9\d|1[0-2]\d)\b", 1),
    (
        "age_sex_over_89",
        "AGE",
        MEDIUM,
        r"\b(9\d|1[0-2]\d)\s*(?:m|f|male|female|man|woman|gentleman|lady)\b",
        1,
    ),
    # Written out: "ninety-two year old", "one hundred and one years old".
    (
        "age_words_over_89",
        "AGE",
        STRONG,
        r"\b((?:ninety|one\s+hundred(?:\s+and)?)(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?)"
        r"(?=[\s-]*(?:y/?o\b|years?\b|yrs?\b|year-old))",
        1,
    ),
    # Contact details.
    ("email", "EMAIL_ADDRESS", STRONG, r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 0),
    (
        "url",
        "URL",
        STRONG,
        r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|us|info)"
        r"(?:/[^\s<>\"')\]]*)?\b",
        0,
    ),
    (
        "ipv4",
        "IP_ADDRESS",
        STRONG,
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
        0,
    ),
    ("ipv6", "IP_ADDRESS", MEDIUM, r"\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b", 0),
    (
        "phone_us",
        "PHONE_NUMBER",
        STRONG,
        r"(?<![\w/])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s*|\(?\d{3}\s*[\s.-]\s*)\d{3}\s*[\s.-]?\s*\d{4}\d?\b"
        r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?",
        0,
    ),
    ("phone_digits", "PHONE_NUMBER", STRONG, r"\(\d{6}-\d{4}\)|\b\d{10}\b", 0),
    (
        "phone_cued",
        "PHONE_NUMBER",
        STRONG,
        r"\b(?:pager|pgr|pg|beeper|beep|cell|phone|tel|telephone|fax|mobile|ph|contact|ext|extension|"
        r"call\s+back)\s*(?:number|no\.?|num)?\s*[#:]?\s*[#:]?\s*(\d[\d\s.-]{3,13}\d)",
        1,
    ),
    ("ssn", "US_SSN", STRONG, r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b", 0),
    (
        "ssn_cued",
        "US_SSN",
        STRONG,
        r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[#:]?\s*(\d[\d -]{7,10}\d)",
        1,
    ),
    # Record, account, plan, licence, vehicle and device numbers, recognised by their label.
    (
        "mrn_cued",
        "MEDICAL_RECORD_NUMBER",
        STRONG,
        r"\b(?:mrn|emr|ehr|hicn|mbi|mr\s*#|mr\s+no\.?|medical\s+record(?:\s+(?:number|no\.?|num|#))?|record\s*(?:#|no\.?|number)|"
        r"unit\s+(?:no\.?|number)|patient\s+(?:id|number|no\.?|#)|pt\s+id|hospital\s+(?:id|number|#))"
        rf"\s*(?:is\s+)?[#:]?\s*[#:]?\s*{_ID_VALUE}",
        1,
    ),
    (
        "account_cued",
        "ACCOUNT_NUMBER",
        STRONG,
        rf"\b(?:account|acct|billing)\s*(?:number|no\.?|num|#|id)?\s*(?:is\s+)?[#:]?\s*[#:]?\s*{_ID_VALUE}",
        1,
    ),
    (
        "health_plan_cued",
        "HEALTH_PLAN_NUMBER",
        STRONG,
        r"\b(?:insurance|insurer|policy|plan|member|subscriber|beneficiary|medicare|medicaid|group|"
        r"coverage|payer|hmo|ppo)\s*(?:id|number|no\.?|num|#|policy(?:\s+number)?)?\s*(?:is\s+)?[#:]?\s*"
        rf"[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        1,
    ),
    (
        "license_cued",
        "LICENSE_NUMBER",
        STRONG,
        r"\b(?:licen[cs]e|lic\.?|dl|driver'?s\s+licen[cs]e|certificate|cert\.?|dea|npi|registration|"
        rf"passport)\s*(?:number|no\.?|num|#|id)?\s*(?:is\s+)?[#:]?\s*[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        1,
    ),
    (
        "id_cued",
        "ID",
        STRONG,
        r"\b(?:id|identifier|ref(?:erence)?|case|case\s+number|site\s+id|study\s+id|file|claim|order|"
        rf"accession|requisition|ticket|serial|sn|s/n|device|imei|vin|plate|tag)\s*(?:number|no\.?|num|#|id)?"
        rf"\s*(?:is\s+)?[#:]?\s*[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        1,
    ),
    ("id_hash", "ID", MEDIUM, r"#\s*([A-Z0-9][A-Z0-9-]{3,})\b", 1),
    ("id_shaped", "ID", MEDIUM, r"\b([A-Z]{2,4}-\d{3,}[A-Z0-9-]*|\d{3,}-\d{2,}-\d{2,}[A-Z0-9-]*)\b", 1),
    (
        "vin",
        "VEHICLE_ID",
        STRONG,
        r"\b(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}\b",
        0,
    ),
    (
        "uuid",
        "ID",
        MEDIUM,
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        0,
    ),
    ("credit_card_shaped", "CREDIT_CARD", MEDIUM, r"\b(?:\d{4}[- ]?){3}\d{1,4}\b", 0),
    (
        "iban_shaped",
        "IBAN_CODE",
        MEDIUM,
        r"\b(?-i:[A-Z]{2}\d{2})(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b",
        0,
    ),
    ("iban_cued", "IBAN_CODE", STRONG, r"\biban\s*(?:is|:|#)?\s*([a-z]{2}\d{2}[a-z0-9 ]{8,30}[a-z0-9])", 1),
    (
        "credit_card_cued",
        "CREDIT_CARD",
        STRONG,
        r"\b(?:card|cc|credit\s+card|debit\s+card)\s*(?:number|no\.?|#)?\s*(?:is|:)?\s*(\d(?:[ -]?\d){11,18})\b",
        1,
    ),
    (
        "postal_code_cued",
        "ZIP_CODE",
        STRONG,
        r"\b(?:zip|postal)\s*(?:code)?\s*(?:is|:)?\s*((?-i:[A-Z0-9]{2,6})(?:[ -][A-Z0-9]{2,4})?)\b",
        1,
    ),
    # Places: street addresses, City, ST ZIP, PO boxes, facility names.
    (
        "street_address",
        "STREET_ADDRESS",
        STRONG,
        r"\b\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+|north\s+|south\s+|east\s+|west\s+)?"
        rf"(?:(?-i:[A-Z0-9])[\w'-]*[ \t]+){{1,4}}"
        rf"{_STREET_SUFFIX}\b\.?(?:,?\s*(?:apt|apartment|suite|ste|unit|#|floor|fl|room|rm|bldg)\.?\s*#?\s*"
        r"[\w-]+)?",
        0,
    ),
    ("po_box", "STREET_ADDRESS", STRONG, r"\b(?:p\.?\s*o\.?\s*box|post\s+office\s+box)\s*\d+\b", 0),
    (
        "town_state",
        "LOCATION",
        STRONG,
        rf"\b((?:{_CAP}[A-Za-z.'-]+\s+){{0,2}}{_CAP}[A-Za-z.'-]+),\s*(?-i:{_STATE}|{_STATE_NAME})\b"
        r"(?:\s+\d{5}(?:-\d{4})?)?",
        0,
    ),
    ("zip_after_state", "ZIP_CODE", STRONG, rf"\b(?-i:{_STATE})\s+(\d{{5}}(?:-\d{{4}})?)\b", 1),
    ("zip_cued", "ZIP_CODE", STRONG, r"\b(?:zip|zip\s*code|postal\s+code)\s*[#:]?\s*(\d{5}(?:-\d{4})?)\b", 1),
    (
        "facility_named",
        "FACILITY",
        MEDIUM,
        rf"\b((?:(?:st|saint|mt|mount|the)\.?\s+)?(?:{_CAP}[\w'&-]*\s+(?:(?:of|and|&)\s+)?){{1,4}}"
        rf"{_FACILITY_HEAD}\b(?:\s+(?:of|in|at)\s+{_CAP}[\w'.-]*(?:\s+{_CAP}[\w'.-]*){{0,2}})?)",
        1,
    ),
    (
        "residence_place",
        "LOCATION",
        MEDIUM,
        r"\b(?:lives|living|resides|residing|moved|relocated|lived|from)\s+(?:in|at|to|near)\s+"
        rf"({_CAP}[A-Za-z'-]+(?:\s+{_CAP}[A-Za-z'-]+)?)",
        1,
    ),
    (
        "saint_place",
        "FACILITY",
        MEDIUM,
        r"\b(?-i:St|Saint|Mt|Mount|ST|MT)\.?\s+(?-i:[A-Z][a-z'’]+)(?:'s|’s|s)?\b",
        0,
    ),
    # "U Maryland scale", "Univ. of Michigan": a state university names a place of care.
    (
        "state_university",
        "FACILITY",
        MEDIUM,
        rf"\b(?:u|univ|university)\.?\s+(?:of\s+)?(?-i:{_STATE_NAME})\b",
        0,
    ),
]

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
# Orientation questions: "knows it is 2019", "states the year is 1996".
_YEAR_NOW = re.compile(
    r"\b(?:it\s+is|it'?s|year\s+is|year\s+as|the\s+year)\s+((?:19|20)\d\d)\b(?![ \t]*(?:cc|ml|mg|units?|hrs?|:))",
    re.IGNORECASE,
)

_LETTER = r"[^\W\d_]"
_NAME = rf"{_LETTER}(?:{_LETTER}|['’\-])*{_LETTER}|{_LETTER}\.?"
_NAME_RUN = rf"(?:{_NAME})(?:\s+(?:[A-Za-z]\.\s*)?(?:{_NAME})){{0,2}}"
_TITLE = r"\b(?:dr|drs|dr's|doctor|mr|mrs|ms|miss|mister|prof|professor|mx)\b\.?\s*"
_RELATIVE = (
    r"(?:\b(?:sons?|daughters?|dtrs?|wife|husband|hus|spouse|sisters?|sis|brothers?|bro|mother|mom|father|dad|"
    r"nieces?|nephews?|grandsons?|grand-?daughters?|grandaughters?|grandchildren|grandmother|grandfather|grandma|grandpa|"
    r"aunt|uncle|cousin|friends?|fianc[eé]e?|partner|neighbou?r|guardian|proxy|hcp|girlfriend|boyfriend|"
    r"step(?:son|daughter|mother|father)|in-law|named|name\s+is|called|contact(?:\s+person)?|"
    r"spokesperson|caregiver|roommate)\b[\s,:;\-(]*(?:(?:and|&|or)\s+)?)+"
)
_ROLE = (
    r"(?:\b(?:np|rn|rrt|pa|md|attending|resident|fellow|intern|nurse|pharmacist|sw|social\s+worker|"
    r"case\s+manager|case\s*worker|house\s+staff|talked\s+(?:with|to)|meet|met\s+with|chaplain|surgeon|cardiologist|neurologist|physician|pcp|hospitalist|dietitian|"
    r"therapist|per|paged|page|w/|with|by|spoke\s+to|spoke\s+with|discussed\s+with|informed|notified)"
    r"\b\.?[\s,:]*)+"
)
# A staff role right before a name: "NP VUKOVICH made aware", "case worker Greta Stanowicz".
_STAFF = (
    r"\b(?:np|rn|rrt|crt|nurse|attending|resident|fellow|intern|case\s*(?:manager|worker)|"
    r"social\s+worker|chaplain|house\s+staff)\b\.?[\s,:]*"
)
_CREDENTIAL = (
    r"(?:,\s*|\s+)(?:(?-i:RN|NP|PA|SW|CM|PA-C)|rn|r\.n\.|md|m\.d\.|np|rrt|r\.r\.t\.|msw|licsw|lcsw|"
    r"phd|crna|cna|pharmd|lpn|aprn|fnp|dnp|rd|slp|crt|rrt)\b"
)
# The first run of letters of every credential above ("r.n." -> "r", "PA-C" -> "pa").
_CREDENTIAL_HEADS = frozenset(
    [
        "rn",
        "np",
        "pa",
        "sw",
        "cm",
        "r",
        "md",
        "m",
        "rrt",
        "msw",
        "licsw",
        "lcsw",
        "phd",
        "crna",
        "cna",
        "pharmd",
        "lpn",
        "aprn",
        "fnp",
        "dnp",
        "rd",
        "slp",
        "crt",
    ]
)
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-])*")
_TITLE_AT = re.compile(_TITLE, re.IGNORECASE)


@dataclass(frozen=True)
class _Span:
    type: str
    start: int
    end: int
    score: float
    rule: str = ""  # the name of the rule that found it


def _named(rule: str, spans: Iterator[_Span]) -> Iterator[_Span]:
    """The spans of a rule function, each naming `rule` unless it names a finer rule itself."""
    for span in spans:
        yield span if span.rule else replace(span, rule=rule)


class ClinicalRecognizer(EntityRecognizer):
    """All clinical PHI patterns and the name heuristics, in one pass over the text."""

    ENTITIES = (
        "DATE",
        "AGE",
        "EMAIL_ADDRESS",
        "URL",
        "IP_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
        "MEDICAL_RECORD_NUMBER",
        "ACCOUNT_NUMBER",
        "HEALTH_PLAN_NUMBER",
        "LICENSE_NUMBER",
        "VEHICLE_ID",
        "ID",
        "CREDIT_CARD",
        "IBAN_CODE",
        "STREET_ADDRESS",
        "LOCATION",
        "ZIP_CODE",
        "FACILITY",
        "PERSON",
        "NRP",
        "TITLE",
        "DENY_LIST",
    )

    def __init__(
        self, deny_list: list[str] | None = None, redact_years: bool = False, history_years: bool = True
    ) -> None:
        super().__init__(supported_entities=list(self.ENTITIES), name="ClinicalRecognizer")
        self.patterns = [
            (name, entity, score, re.compile(pattern, re.IGNORECASE), group)
            for name, entity, score, pattern, group in _PATTERNS
        ]
        self.history_years = history_years
        if redact_years:
            self.patterns.append(
                ("any_year", "DATE", MEDIUM, re.compile(r"(?<![\w/.-])(?:19\d\d|20\d\d|'\d\d)(?![\w/.-])"), 0)
            )
        self.deny = (
            re.compile(r"\b(?:" + "|".join(re.escape(w) for w in deny_list) + r")\b", re.IGNORECASE)
            if deny_list
            else None
        )
        flags = re.IGNORECASE
        self.titled = re.compile(rf"({_TITLE})((?:[A-Za-z]\.\s*)*{_NAME_RUN})", flags)
        self.related = re.compile(
            rf"{_RELATIVE}((?:{_NAME_RUN})(?:\s*(?:,|and|&)\s*(?:{_NAME_RUN})){{0,3}})", flags
        )
        self.role = re.compile(rf"{_ROLE}(\b(?:[A-Za-z]\.\s*)?{_NAME_RUN})", flags)
        self.staff = re.compile(rf"{_STAFF}((?:[A-Za-z]\.\s*)?{_NAME_RUN})", flags)
        self.credentialed = re.compile(rf"(\b(?:[A-Za-z]\.\s*)?{_NAME_RUN}){_CREDENTIAL}", flags)

    def load(self) -> None:
        """Nothing to load: the patterns are compiled in the constructor."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        # Every result names its rules ("clinical:history_year"); rules that found the same span
        # are joined with "+", as merged spans are.
        found: dict[tuple[str, int, int, float], list[str]] = {}
        for span in self.spans(text):
            if span.type in entities:
                rules = found.setdefault((span.type, span.start, span.end, span.score), [])
                if span.rule not in rules:
                    rules.append(span.rule)
        key = RecognizerResult.RECOGNIZER_NAME_KEY
        return [
            RecognizerResult(
                *found_span,
                recognition_metadata={key: "+".join(f"{SOURCE}:{rule}" for rule in sorted(rules))},
            )
            for found_span, rules in found.items()
        ]

    def spans(self, text: str) -> Iterator[_Span]:
        for name, entity, score, pattern, group in self.patterns:
            for match in scan(pattern, text):
                start, end = match.span(group)
                if entity in _PLACE_NAMES:
                    start = _skip_common_words(text, start, end)
                    if entity == "FACILITY" and _generic_care(text, start, end):
                        continue
                    if _STATE_AFTER_COMMA.search(text, start, end) and _shorthand_pair(text, start, end):
                        continue
                elif (
                    entity == "DATE"
                    and (
                        _VENT_SETTING.search(text, max(0, start - 8), start)
                        or (
                            _FRACTION.fullmatch(text, start, end)
                            and _VENT_NEAR.search(text, max(0, start - 40), start)
                        )
                        or _pain_score(text, start, end)
                    )
                ) or not _plausible(entity, score, text, start, end):
                    continue
                if entity in _NUMBERS and text[start - 1 : start] == "#":
                    start -= 1  # "MRN: #SF-998871": the number as written
                if end > start:
                    yield _Span(entity, start, end, score, name)
        if not mostly_upper(text):
            yield from _named("cued_place", _cued_places(text))
            if everyday(text):
                yield from _named("cued_address", _cued_addresses(text))
                yield from _world_places(text)
                yield from _everyday_names(text)
                yield from _named("everyday_place", _everyday_places(text))
                yield from _cued_everyday_names(text)
                yield from _named("card_field", _card_fields(text))
                yield from _named("job_title", _job_titles(text))
                for match in scan(_ANY_AGE, text):
                    group = 1 if match.group(1) else 2
                    yield _Span("AGE", match.start(group), match.end(group), WEAK, "any_age")
            if is_prose(text):
                yield from _prose_spans(text)
        if self.history_years and clinical_record(text):
            # Clinical notes date a patient's past events by year (PhysioNet and i2b2 mark them);
            # health questions and queries ask about them ("diagnosed in 2021?"), and there they stay.
            for pattern, name in ((_HISTORY_YEAR, "history_year"), (_YEAR_NOW, "year_now")):
                for match in scan(pattern, text):
                    yield _Span("DATE", match.start(1), match.end(1), MEDIUM, name)
        if self.deny:
            for match in scan(self.deny, text):
                yield _Span("DENY_LIST", match.start(), match.end(), 1.0, "deny_list")
        yield from self._names(text)

    def _names(self, text: str) -> Iterator[_Span]:
        upper = mostly_upper(text)
        # A title is strong evidence: everything up to the first common word is a name. In clinical
        # notes the title itself stays, as the i2b2 and PhysioNet guidelines have it ("Dr." names
        # no one), and "MS" is also mental status ("MS changes"): there the name after it needs a
        # census name that is no English word. In prose the title goes with the name, as PII
        # annotation has it ("Mr. Okafor flew to ...").
        prose = not upper and is_prose(text)
        record = clinical_record(text)
        for match in scan(self.titled, text):
            ms = not prose and match.group(1).rstrip(". \t\n").lower() == "ms"
            tokens = list(_name_tokens(text, match.start(2), match.end(2), upper, strong=not ms, weak=ms))
            if not record and tokens:
                title_end = match.start(1) + len(match.group(1).rstrip())
                yield _Span("PERSON", match.start(1), title_end, tokens[0].score, "titled_name")
            yield from _named("titled_name", iter(tokens))
        for match in scan(self.staff, text):
            # After a role, only a name-like word: a first name or a word of no language.
            for span in _name_tokens(text, match.start(1), match.end(1), upper, strong=False):
                low = text[span.start : span.end].lower()
                plain = not (is_english(low) or _misspelt(low) or "-" in low or _TITLE_AT.fullmatch(low))
                if low in first_names() or (plain and len(low) > 2):
                    yield replace(span, rule="staff_name")
        credentials = may_hold(text, _CREDENTIAL_HEADS)
        for pattern, weak, name in (
            (self.related, False, "relative_name"),
            (self.credentialed, False, "credentialed_name"),
            (self.role, True, "role_name"),
        ):
            if pattern is self.credentialed and not credentials:
                continue  # no credential word: the costliest of these scans cannot match
            for match in scan(pattern, text):
                yield from _named(
                    name,
                    _name_tokens(
                        text,
                        match.start(1),
                        match.end(1),
                        upper,
                        strong=False,
                        weak=weak,
                        backwards=pattern is self.credentialed,
                    ),
                )
        yield from _named("listed_name", _list_names(text, upper))
        yield from _named("lowercase_name", _lowercase_names(text))
        yield from _named("signature", _signature(text))
        for match in scan(_BEFORE_PHONE, text):
            lows = [match.group(1).lower(), match.group(2).lower()]
            named = any(is_name_word(w) or not is_english(w) for w in lows)
            if named and not any(w in NOT_NAMES or w in FACILITY_WORDS for w in lows):
                yield _Span(
                    "PERSON", match.start(1), match.end(2), MEDIUM, "name_before_phone"
                )  # "Jane Roe cell# ..."
        for match in scan(_FAMILY_OF, text):
            low = match.group(1).lower()
            if low not in NOT_NAMES and is_name_word(low) and not is_english(low):
                yield _Span(
                    "PERSON", match.start(1), match.end(1), MEDIUM, "family_name"
                )  # "KEEP FIGUEROA FAMILY AWARE"
        yield from _named("initial_name", _initial_names(text))
        yield from _named("o_surname", _o_surnames(text))
        for match in scan(_NAME_LABEL, text):
            first = match.group(1).split()[0].lower()
            if upper and is_english(first) and first not in first_names():
                continue  # "PATIENT IS TOLERATING": in capitals, every word looks like a name
            if first not in NOT_NAMES:
                yield _Span("PERSON", match.start(1), match.end(1), MEDIUM, "name_label")
        yield from _named("first_name_subject", _first_name_subjects(text))
        yield from _named("census_name", _census_names(text))
        yield from _places(text, upper)
        yield from _named("us_town", _us_towns(text))
        yield from _named_places(text)


_PLACE_NAMES = frozenset({"FACILITY", "LOCATION"})
_NUMBERS = frozenset(
    {"MEDICAL_RECORD_NUMBER", "ACCOUNT_NUMBER", "HEALTH_PLAN_NUMBER", "LICENSE_NUMBER", "ID"}
)
# Phone numbers as written around the world ("+46 (0)8 928 571 38", "0497 31 64 08"): accepted
# with a leading + ( or 0, or a phone word nearby.
_INTL_PHONE = re.compile(
    r"(?<![\w+.])(\+\d{1,3}[\s.-]?)?(\(0?\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}(?:\s?x\d{1,5})?(?![\w.]\d)"
)
_PHONE_CUE = re.compile(
    r"\b(?:call|phone|mobile|cell|desk|fax|tel|telephone|office|messages?|answering|reach|number|contact)\b",
    re.IGNORECASE,
)
# An address block: a house number, then street words and numbers, unit, town, region, country and
# postal code, across commas and line breaks, up to the first ordinary lower-case word.
_ADDRESS_START = re.compile(
    r"(?<![\w.,-])(?:\d{1,6}[A-Za-z]?\s+(?:\d{1,4}\s+)?[^\W\d_][\w'’.-]*|(?:psc|unit|box|apt\.?|suite)\s+\d+)",
    re.IGNORECASE,
)
_ADDRESS_PART = re.compile(r"(?:[\s,>•·|]|\?{2,}){1,6}([^\s,>•·|?!\"“”]+)")
# After an address cue a full stop may also close a line of the block ("Fő u. 3.\nSzeged").
_CUED_ADDRESS_PART = re.compile(r"(?:[\s,.>•·|]|\?{2,}){1,6}([^\s,>•·|?!\"“”]+)")
_STREET_WORDS = (
    "strasse straße str str. gasse weg vej vei veien veg vegen gate gata gatan gade katu tie kuja tee põik "
    "u. ul. ulica utca tér út útja körút rkp. trg cesta ulice náměstí rue via viale piazza corso calle c/ "
    "carrer paseo plaza camino avenida av. rua rúa travessa largo praça straat laan plein platz allee "
    "boulevard chemin allée quai odos οδός λεωφόρος λ. avenue street road"
)
_ADDRESS_WORDS = frozenset(
    (
        "apt apt. suite ste unit box po p.o. psc apo fpo dpo floor fl bldg rm room de do da dos das la le "
        "van von del der den di du al el and & nan z u v na nad pod e y des dei delle della degli dels "
        + _STREET_WORDS
    ).split()
)
# A street name before its number, as most of the world writes it ("Lindenallee 12").
_STREET_FIRST = re.compile(
    r"(?<![\w.,-])(?-i:[A-Z][\w'’-]+)(?:\s+(?-i:[A-Z][\w'’-]+))?\s+(?:"
    + "|".join(re.escape(w) for w in _STREET_WORDS.split())
    + r")\s*\d{1,5}\b",
    re.IGNORECASE,
)
# One word ending in a street word of another language, then the number ("Mühlenstrasse 12").
_STREET_COMPOUND = re.compile(
    r"(?<![\w.,-])(?-i:[A-ZÀ-ÞĀ-Ž])[\w'’-]*(?:strasse|straße|gasse|weg|vej|vei|veien|vegen|gata|gatan|gade|"
    r"katu|tie|kuja|vägen|väg|straat|laan|platz|allee|stræde|gränd|plads|torget|utca)\s+\d{1,5}\b",
    re.IGNORECASE,
)
# Capitalised words after these in prose name a place ("grew up in Sund", "flew to Varnholt").
_CAP_WORD = r"(?-i:[A-Z][\w'’.-]*)"
_PLACE_CUE = re.compile(
    r"\b(?:in|from|to|at|near|visit|visiting|born\s+in|lives\s+in)\s+(?:the\s+|our\s+)?"
    rf"({_CAP_WORD}(?:[ \t]+(?:&[ \t]+)?{_CAP_WORD}){{0,4}}"
    r"(?:\s+(?:downtown\s+)?(?:clinic|office|hospital|medical\s+center))?"
    rf"(?:\s+in\s+{_CAP_WORD}(?:\s+{_CAP_WORD})?)?(?:,\s*(?-i:[A-Z]{{2}})\b)?)"
)


def _prose_spans(text: str) -> Iterator[_Span]:
    """Patterns that only pay in ordinary prose, where clinical shorthand cannot trip them."""
    for match in scan(_INTL_PHONE, text):
        digits = sum(c.isdigit() for c in match.group())
        cued = match.group(1) or match.group(2) or match.group().startswith("0")
        cued = cued or _PHONE_CUE.search(text, max(0, match.start() - 30), match.start())
        cued = cued or _PHONE_CUE.match(text, match.end() + 1)
        if 7 <= digits <= 16 and cued:
            yield _Span("PHONE_NUMBER", match.start(), match.end(), MEDIUM, "phone_international")
    # Lower-case everyday writing: a block's town and country are lower case too.
    lenient = everyday(text) and not any(c.isupper() for c in text)
    for pattern in (_ADDRESS_START, _STREET_FIRST, _STREET_COMPOUND):
        for match in scan(pattern, text):
            end = _address_end(text, match.end(), lenient=lenient)
            stop = end or match.end()
            found = end is not None or pattern is not _ADDRESS_START or match.group()[0].isalpha()
            if found and not _settings(text[match.start() : stop]):
                yield _Span("STREET_ADDRESS", match.start(), stop, MEDIUM, "address_block")


_STREET_WORD_SET = frozenset(_STREET_SUFFIX_WORDS[3:-1].split("|")) | _ADDRESS_WORDS


def _settings(value: str) -> bool:
    """ "600 Rate 12 Peep 5 FiO2 50%", "3 hrs. Stable", "6 to 8": numbers with clinical words,
    not a house number and a street."""
    if "%" in value or _RANGE.match(value):
        return True
    # Region codes are no settings: "Erie, PA 16501", "Serrinha, PE".
    words = [w.lower() for w in _WORD.findall(value) if not (len(w) == 2 and w.isupper())]
    return any(w in _SETTING_WORDS and w not in _STREET_WORD_SET for w in words)


_RANGE = re.compile(r"\d+\s+to\s+\d")
_SETTING_WORDS = MEDICAL_TERMS | {
    "rate",
    "hrs",
    "hr",
    "hours",
    "hour",
    "min",
    "mins",
    "x",
    "episodes",
    "yesterday",
}


def _cued_places(text: str) -> Iterator[_Span]:
    """Capitalised words after "in/from/at" in mixed-case text ("from Chicago", "at Cedars-Sinai",
    "at Mayo Clinic in Rochester, MN"); not months, weekdays, acronyms of care or eponyms."""
    prose = is_prose(text)
    for match in scan(_PLACE_CUE, text):
        words = _WORD.findall(match.group(1))
        first = words[0].lower() if words else ""
        if not first or first in NOT_NAMES or first in EPONYMS or _CALENDAR.fullmatch(words[0]):
            continue
        if _is_eponym_use(text, match.end(1)) or words[-1].lower() in EPONYM_HEADS:
            continue  # "in Wells score"
        if not prose and (words[0].isupper() or len(first) < 3):
            continue  # clinical writing: "to PSV", "in NSR", "in L fem"
        if not prose and _shorthand_or_word(words[0], match.group(1)):
            continue
        end = match.end(1) - _trailing_dot(match.group(1))
        for stop in _SENTENCE_END.finditer(text, match.start(1), end):
            following = stop.group(1).lower()
            if following not in FACILITY_WORDS and (following in NOT_NAMES or not is_name_word(following)):
                end = stop.start()  # "Holy Cross. This friend", "Fernbrook. Pt's daughter"
                break
        yield _Span("LOCATION", match.start(1), end, WEAK)


_SENTENCE_END = re.compile(r"(?<!\bSt)(?<!\bMt)(?<!\b[A-Z])\.\s+([A-Z][\w'’]*)")


def _shorthand_or_word(word: str, value: str) -> bool:
    """In clinical writing the capitals after "in/to/from" are often shorthand or adverbs: "to
    MDs", "in SpO2", "to Pt's baseline", "to Nasally suction" (English words cannot be ruled out:
    WordNet lists Chicago and Hagerstown)."""
    low = word.lower()
    low = low[:-2] if low.endswith(("'s", "’s")) else low
    acronym = any(sum(c.isupper() for c in part) > 1 for part in word.split("-"))
    if low in NOT_NAMES or acronym or value[len(word) : len(word) + 1].isdigit():
        return True
    return low.endswith("ly") and is_english(low)


def _trailing_dot(value: str) -> int:
    return 1 if value.endswith(".") and not value.endswith(("St.", "Mt.")) else 0


def _address_end(text: str, position: int, lenient: bool = False) -> int | None:
    """Where an address block that began before `position` ends; None when it has no second part
    (a number, a unit word or a capitalised word) and so was only "5 Things". `lenient` (after an
    address cue, or in text written all in lower case) also lets through lower-case words that are
    not English ("trg slobode", "οδός ερμού")."""
    end, parts = position, 0
    part = _CUED_ADDRESS_PART if lenient else _ADDRESS_PART
    while parts < 16:
        match = part.match(text, end)
        if match is None:
            break
        token = match.group(1).rstrip(".;:").strip("()")
        if not token:
            break
        low = token.lower()
        listed = low in _ADDRESS_WORDS or low + "." in _ADDRESS_WORDS
        region = token.isupper() and len(token) > 1  # "TAMPERE NO", "APO AE": codes, not stop words
        if not (listed or region) and low in STOP_WORDS:
            break
        foreign = lenient and not is_english(low)
        if not (token[0].isupper() or token[0].isdigit() or listed or foreign):
            break
        end = match.end(1) if low + "." in _ADDRESS_WORDS else match.start(1) + len(token)
        parts += 1
    return end if parts else None


# Phrases after which an address follows ("Address:", "sent to", "located at", "lives on").
_ADDRESS_CUE = re.compile(
    r"\b(?:address(?:es)?(?:\s+(?:of\s+[^.?!\n]{1,60}?\s+)?(?:is|was|to|with|at))?\s*:?|"
    r"(?:sent|send|mail|mailed|ship|shipped|deliver|delivered|forward|forwarded|return|returned)"
    r"(?:\s+[a-z]+){0,3}?\s+to|located\s+(?:at|on|in)|(?:live|lives|lived|living|reside|resides)\s+(?:at|on|in)|"
    r"meet\s+(?:me|you|us)\s+at|(?:is|are)\s+(?:at|on)|it'?s\s+(?:in|at|on)|(?:drop|drops|dropped)\s+\w+\s+off\s+at|"
    r"arrived\s+at|stop\s+at|(?P<corner>(?:the\s+)?corner\s+of))(?=\s)",
    re.IGNORECASE,
)


_CORNER = re.compile(r"\s+((?:the\s+)?corner\s+of)\b", re.IGNORECASE)


def _cued_addresses(text: str) -> Iterator[_Span]:
    """The address after an address cue, as a whole block ("Address: Mühlgasse 4 / Suite 12 /
    LINZ / Austria 4020", "the corner of Elm Road 12 and Oak Lane"); a block without a number is
    no address ("sent to the lab")."""
    lenient = not any(c.isupper() for c in text)
    for cue in scan(_ADDRESS_CUE, text):
        start = position = cue.end()
        corner = _CORNER.match(text, position)
        if cue.group("corner") is not None:
            start = cue.start()
        elif corner is not None:
            start, position = corner.start(1), corner.end()
        end = _address_end(text, position, lenient=True)
        first = _ADDRESS_PART.match(text, position)
        if end is None or first is None or not any(c.isdigit() for c in text[position:end]):
            continue
        if start != cue.end() or lenient or first.group(1)[0].isupper() or first.group(1)[0].isdigit():
            yield _Span("STREET_ADDRESS", start if start != cue.end() else first.start(1), end, MEDIUM)


# Where a patient goes, comes from or is seen: the words after are a place unless they are common.
_MOVEMENT = re.compile(
    r"\b(?:transferr?ed|transferring|transfer|trans|xfer(?:red|d)?|referred|admitted|readmitted|arrived|"
    r"taken|sent|came|come|coming|go|going|returned|called(?=\s+from)|discharged|d/c'?d|dc'?d|presented|brought|moved|seen|"
    r"treated|followed|evaluated|assessed|hospitali[sz]ed|operated|lives|living|lived|resides|residing|"
    r"visiting|visited|flew|relocated|born|admission|transport(?:ed)?|bed|placement|adm|tx|tx'?d|"
    r"med-?flight(?:ed)?|flown|screened|accepted|return|returns|returning|arrival)\s+"
    r"(?:back\s+|here\s+|over\s+|today\s+|earlier\s+|nearby\s+|with\s+[^\W\d_]+(?:\s+and\s+[^\W\d_]+)?\s+)?"
    r"(?:to|from|at|in|into|@)\s+"
    r"(?:the\s+|our\s+)?(?=((?:[^\W\d_][\w'’.&-]*[ \t]*){1,5}))|"
    r"@\s*((?-i:(?:St\.?|Saint|Mt\.?)\s+)?(?-i:[A-Z][a-z][\w'’.&-]*)(?:[ \t]+[^\W\d_][\w'’.&-]*){0,3})|"
    r"\b(?:to|from|at|in)\s+(?:the\s+)?((?:[^\W\d_][\w'’&-]*\s+){1,3}(?:hospital|hosp|memorial|medical\s+"
    r"center|rehab|nursing\s+home|clinic|infirmary|hospice))\b",
    re.IGNORECASE,
)
_SAINT_UPPER = re.compile(r"\b(?-i:ST|MT)\.?\s+(?-i:([A-Z]{3,}))(?:'S)?\b")
_BARE_PLACE = re.compile(r"\b(?:at|to|from|@)\s+(?:the\s+)?([^\W\d_][\w'’-]+)\b", re.IGNORECASE)
_DOSE_CHANGE = re.compile(
    r"(?:chang|switch|increas|decreas|titrat|wean|convert|advanc|start)\w*\s*$", re.IGNORECASE
)


@lru_cache(maxsize=256)
def _capitalised_share(text: str) -> float:
    words = _WORD.findall(text[:3000])
    return sum(w[0].isupper() for w in words) / max(1, len(words))


_NOT_A_NAMED_PLACE = STOP_WORDS | {
    "outside",
    "osh",
    "local",
    "another",
    "nearby",
    "previous",
    "prior",
    "community",
    "same",
    "this",
}
_FACILITY_TAIL = frozenset(
    [
        "hospital",
        "hosp",
        "memorial",
        "medical",
        "med",
        "center",
        "ctr",
        "centre",
        "clinic",
        "rehab",
        "health",
        "infirmary",
        "general",
        "regional",
        "hospice",
        "institute",
    ]
)


def _places(text: str, upper: bool) -> Iterator[_Span]:
    """The named place after a movement ("transferred to Wexbridge", "lives in glenhaven",
    "at UCSF"): words up to the first one that is common vocabulary; in mixed-case text they must be
    capitalised, in single-case text they must be unusual words or names."""
    mixed = mixed_case(text)
    for match in scan(_MOVEMENT, text):
        group = next(g for g in (1, 2, 3) if match.group(g))
        start = end = None
        if group == 3:
            # A facility head ("... hospital") names the place whatever the words before it are.
            words = [
                w
                for w in _WORD.finditer(text, match.start(3), match.end(3))
                if w.group().lower() not in _NOT_A_NAMED_PLACE
            ]
            named = len(words) > 1 and words[0].group().lower() not in _FACILITY_TAIL
            if named:
                start, end = _skip_common_words(text, words[0].start(), words[-1].end()), words[-1].end()
                if start < end and not _generic_care(text, start, end):
                    yield _Span("FACILITY", start, end, MEDIUM, "movement_place")
            continue
        tokens = list(_WORD.finditer(text, match.start(group), match.end(group)))
        lows = [w.group().lower().rstrip(".") for w in tokens]
        for index, word in enumerate(tokens):
            token, low = word.group(), lows[index]
            if low in _FACILITY_TAIL:
                if start is None:
                    break  # "seen at the clinic": a kind of place, not a named one
                end = word.end()
                continue
            # Before "hospital" or "rehab" any name-like word is part of the name, whatever its
            # case ("presented to holy cross hospital from laurelton rehab").
            headed = any(w in _FACILITY_TAIL for w in lows[index + 1 :]) and (
                low in HOSPITAL_NAME_WORDS or is_name_word(low) or not is_english(low)
            )
            if (low in NOT_NAMES and low not in HOSPITAL_NAME_WORDS) or low in EPONYM_HEADS or len(low) < 2:
                break  # "admitted to Q7": a ward letter
            if mixed and not token[0].isupper() and not headed:
                break
            if not mixed and is_english(low) and not is_name_word(low) and not headed:
                break
            start = word.start() if start is None else start
            end = word.end()
        if start is not None:
            yield _Span("LOCATION", start, end, MEDIUM, "movement_place")
    for match in scan(_SAINT_UPPER, text):
        if match.group(1).lower() in first_names():
            yield _Span("FACILITY", match.start(), match.end(), MEDIUM, "saint_upper")  # "TO GO TO ST. MARY"
    if not mixed:
        # Single-case notes: "at ASHBOURNE", "to wexbridge" - an unusual word or a surname after
        # a bare preposition, unless a drug is being changed to ("switched to levophed").
        for match in scan(_BARE_PLACE, text):
            low = match.group(1).lower()
            if (
                low in NOT_NAMES
                or low in EPONYMS
                or _DOSE_CHANGE.search(text, max(0, match.start() - 14), match.start())
            ):
                continue
            if is_name_word(low) and not is_english(low):
                yield _Span("LOCATION", match.start(1), match.end(1), WEAK, "bare_place")
    for pattern, name in ((_UNIT_AT, "unit_at_place"), (_WARD, "ward"), (_ACRONYM_UNIT, "acronym_unit")):
        for match in scan(pattern, text):
            low = match.group(1).lower()
            if low in NOT_NAMES or low in EPONYMS or (is_english(low) and not is_name_word(low)):
                continue
            if pattern is _WARD and (len(low) < 5 or is_name_word(low) or _misspelt(low)):
                continue  # a ward is named after someone, but "Jones 2" may be a list
            if pattern is _ACRONYM_UNIT and is_english(low):
                continue  # "HOUSE STAFF"
            fused = pattern is _WARD and text[match.end(1) : match.end(1) + 1].isdigit()
            yield _Span("LOCATION", match.start(1), match.end(1) + fused, MEDIUM, name)  # "WEXBRIDGE7"


_TOWN_WORDS = r"[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,3}"
# "RECORDS FROM HAGERSTOWN, MD", "this frederick maryland's clinic": a town before its state.
_BEFORE_STATE = re.compile(
    rf"(?<![\w'’.-])({_TOWN_WORDS}?)(?:,[ \t]*(?-i:{_STATE})\b|,?[ \t]+(?:{_STATE_NAME})(?:'s|’s)?\b)",
    re.IGNORECASE,
)
# "a niece of Gaithersburg", "moved to Glen Burnie": a town after a place preposition (the words are
# read in a lookahead, so "from X to Y" still tries Y).
_AFTER_PLACE_WORD = re.compile(
    rf"\b(?:from|in|of|to|at|near|outside|visiting|@)[ \t]+(?:the[ \t]+)?(?=({_TOWN_WORDS}))",
    re.IGNORECASE,
)


@cache
def _town_heads() -> frozenset[str]:
    """The first run of letters of every town name a match can reach (its words start with a
    letter, so "‘ewa beach" never can)."""
    return frozenset(head.group().casefold() for town in us_places() if (head := _LETTERS.match(town)))


def _us_towns(text: str) -> Iterator[_Span]:
    """US towns (GeoNames, 15,000 people or more) named before their state, in any case, or after
    a place preposition: there, in mixed-case text, every word of the town must be capitalised, and
    in single-case text the town needs a word that is not English or be a city of 100,000 people
    that is no ordinary word ("TO GAITHERSBURG", "FROM RICHMOND", but not "IN NORMAL" or "to mobile")."""
    towns = us_places()
    heads = _town_heads()
    mixed = mixed_case(text)
    states = cased_runs(text) & _STATE_CODES or may_hold(text, _STATE_NAME_HEADS)
    for pattern, cued in ((_BEFORE_STATE, False), (_AFTER_PLACE_WORD, True)):
        if not (cued or states):
            continue  # no state code or state name: nothing for a town to stand before
        for match in scan(pattern, text):
            head = _LETTERS.match(text, match.start(1))
            if cued and (head is None or head.group().casefold() not in heads):
                continue  # no town starts with this word: most prepositions are followed by others
            words = list(_WORD.finditer(text, match.start(1), match.end(1)))
            for size in range(len(words), 0, -1):
                town = words[:size] if cued else words[-size:]
                lows = [w.group().lower() for w in town]
                if " ".join(lows) not in towns:
                    continue
                lower = not all(w.group()[0].isupper() for w in town)
                if lows[0] in NOT_NAMES or (cued and mixed and lower):
                    break
                capitals = all(w.group().isupper() for w in town)
                word = size == 1 and is_english(lows[0])
                word = word and (towns[lows[0]] < 100_000 or lows[0] in COMMON_TOWN_WORDS)
                if cued and (capitals or not mixed) and word:
                    break
                yield _Span("LOCATION", town[0].start(), town[-1].end(), MEDIUM)
                break


# "sent to ED at WMC", "CHF team at WMC": the hospital a unit or a team belongs to.
_UNIT_AT = re.compile(
    r"\b(?:ed|er|ew|icu|ccu|micu|cath\s+lab|clinic|team|nurse|nurses)\s+(?:at|@|of|from)\s+(?:the\s+)?"
    r"([^\W\d_][\w'’-]+)\b",
    re.IGNORECASE,
)
# "WMC EW today", "SEEN BY RVMC NURSE": a hospital's initials before one of its units or staff.
_ACRONYM_UNIT = re.compile(
    r"\b((?-i:[A-Z]{2,5}))\s+(?:ew|ed|er|emergency|nurse|nurses|team|staff|cath\s+lab)\b", re.IGNORECASE
)
# "transfer to Wexbridge 2", "WEXBRIDGE7": a ward, a word of no language and its floor number.
_WARD = re.compile(
    r"\b(?:to|from|per|plan:?|transfer)\s+(?:the\s+)?([^\W\d_]{5,})\s?[1-9](?!\.\d|[\d,/%:x-])(?!\s*(?:mg|mcg|g|cc|ml|l|u|units?|mm|cm|am|pm|hrs?|mins?|x|times|days?|weeks?)\b)",
    re.IGNORECASE,
)


def _skip_common_words(text: str, start: int, end: int) -> int:
    """Where a place name really starts: the case-blind patterns also sweep up "transfer from"."""
    name_start = start
    upper = mostly_upper(text)
    mixed = mixed_case(text)
    for word in _WORD.finditer(text, start, end):
        # A capitalised word belongs to the name in mixed-case text ("Sacred Heart Memorial"); a
        # lower-case word of the language there does not ("occlusion at nursing home").
        token = word.group()
        low = token.lower()
        if low in HOSPITAL_NAME_WORDS:
            continue  # "sacred heart hospital"
        lower_word = mixed and token[0].islower() and low not in FACILITY_WORDS
        lower_word = lower_word and is_english(low) and not is_name_word(low)
        if (low in _CUT_WORDS and (upper or not token[0].isupper())) or lower_word:
            name_start = word.end()
    words = list(_WORD.finditer(text, name_start, end))
    lows = [w.group().lower() for w in words]
    if all(w not in HOSPITAL_NAME_WORDS and (w in FACILITY_WORDS or w in NOT_NAMES) for w in lows):
        return end  # "the hospital", "REHAB", "ST. Stable": a kind of place, not a named one
    return words[0].start()


FACILITY_WORDS = frozenset(
    [
        "hospital",
        "hosp",
        "medical",
        "center",
        "centre",
        "med",
        "ctr",
        "health",
        "system",
        "clinic",
        "clinics",
        "rehab",
        "rehabilitation",
        "nursing",
        "home",
        "facility",
        "infirmary",
        "institute",
        "memorial",
        "group",
        "cancer",
        "children's",
        "childrens",
        "gen",
        "hospice",
        "manor",
        "care",
        "surgical",
        "urgent",
        "university",
        "va",
        "pavilion",
        "sanatorium",
        "the",
        "of",
        "and",
        "st",
        "saint",
        "mt",
        "mount",
    ]
)
# "PS 10/5", "PEEP 5/5": ventilator settings, not dates.
_VENT_SETTING = re.compile(r"(?:ps|peep|cpap|bipap|psv|ips|eps|imv|simv|/)\s*$", re.IGNORECASE)
# "PSV increased to 10/5", "on bi-pap 10/5", "flowby 6/3", "CO/CI 5/3": a setting or a pair of
# readings named earlier in the same phrase.
_VENT_NEAR = re.compile(
    r"\b(?:ps|psv|peep|c-?pap|bi-?pap|flow-?by|ips|eps|imv|simv|co/ci|mode)\b[^\n.;:]{0,30}$",
    re.IGNORECASE,
)
_FRACTION = re.compile(r"\d\d?/\d\d?")


_CARE_KINDS = re.compile(r"(?:rehab|rehabilitation|nursing\s+home|hospice|care\s+center)\W*$", re.IGNORECASE)
_STREET_NUMBER = re.compile(r"\d+[A-Za-z]?\s+")


_STATE_AFTER_COMMA = re.compile(r",\s*(?-i:[A-Z]{2})\b(?!.*,)")


def _shorthand_pair(text: str, start: int, end: int) -> bool:
    """ "CABG, MI", "NT,ND", "LASIX, CO", "Arthur Truebell, MD" in a note: shorthand or a signature,
    not a town and its state (clinical writing only; "Denver, CO" needs a town-like word)."""
    if is_prose(text):
        return False
    town, _, state = text[start:end].rpartition(",")
    words = _WORD.findall(town)
    if not words or not state.startswith(" "):
        return True
    acronym = not mostly_upper(text) and any(sum(c.isupper() for c in w) > 1 for w in words)
    signature = state.strip()[:2] == "MD" and words[0].lower() in first_names()
    return acronym or signature or words[-1].lower() in NOT_NAMES


def _generic_care(text: str, start: int, end: int) -> bool:
    """ "going to rehab", "AWAITING REHAB": a kind of care after an ordinary word, not a named place."""
    if not _CARE_KINDS.search(text, start, end):
        return False
    first = _WORD.match(text, start)
    if first is None or first.group().lower() in HOSPITAL_NAME_WORDS:
        return False  # "HOLY CROSS REHAB"
    return is_english(first.group()) and not is_name_word(first.group())


def _plausible(entity: str, score: float, text: str, start: int, end: int) -> bool:
    """Clinical shorthand that the identifier patterns catch by their shape: vitals written
    "BS-111" or "sbp-100", "FI02 WEAN THIS SHIFT", "3 WAY FOLEY IN PLACE"."""
    value = text[start:end]
    if entity == "ID" and score < STRONG:
        head = re.match(r"[A-Za-z]+", value)
        return not (head and head.group().lower() in NOT_NAMES)
    if entity == "IBAN_CODE" and score < STRONG:
        return sum(c.isdigit() for c in value) >= 10
    if entity == "STREET_ADDRESS" and value[:1].isdigit():
        number = _STREET_NUMBER.match(value)
        words = [w.lower() for w in _WORD.findall(value[number.end() if number else 0 :])][:-1]
        if any(w in NOT_NAMES or w in STOP_WORDS for w in words):
            return False
        if mostly_upper(text) and words and all(is_english(w) and not is_name_word(w) for w in words):
            return False
    return True


# Scores out of ten (pain), six (murmur grade) and five (muscle strength), told by a word nearby.
_SCORE_WORDS = {
    "/10": re.compile(
        r"\b(?:pain|cp|c/o|discomfort|rated|rates|scale|ha|headache|ache|sore|angina|pressure|"
        r"incisional)\b",
        re.IGNORECASE,
    ),
    "/6": re.compile(r"\b(?:murmur|sem|hsm|dm|systolic|diastolic)\b", re.IGNORECASE),
    "/5": re.compile(r"\b(?:strength|strong|grip|motor|power|weakness)\b", re.IGNORECASE),
}


def _pain_score(text: str, start: int, end: int) -> bool:
    """ "c/o 3/10 back pain", "3/6 SEM", "strength 4/5": a score, not the 10th of March."""
    slash = text.rfind("/", start, end)
    words = _SCORE_WORDS.get(text[slash:end])
    if words is None:
        return False
    return bool(words.search(text, max(0, start - 25), start) or words.search(text, end, end + 15))


_CUT_WORDS = NOT_NAMES - {"st", "saint", "mt", "mount", "hospital", "rehab", "home", "of", "and", "the"}


_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


@lru_cache(maxsize=256)
def mostly_upper(text: str) -> bool:
    """UPPER CASE writing (many ICU notes): names and places cannot be told by their capitals."""
    head = text[:2000]
    upper, lower = len(_UPPER.findall(head)), len(_LOWER.findall(head))
    return upper > 0 and upper > 0.7 * (upper + lower)


_LETTERS = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=256)
def letter_runs(text: str) -> frozenset[str]:
    """The text's maximal runs of letters, lower case."""
    return frozenset(_LETTERS.findall(text.lower()))


def may_hold(text: str, words: frozenset[str]) -> bool:
    """Whether a case-blind `\bword\b` of `words` can match in `text`: only where the word is one of
    its runs of letters (outside ASCII always, where the regex engine's case rules differ)."""
    return not text.isascii() or bool(letter_runs(text) & words)


@lru_cache(maxsize=256)
def cased_runs(text: str) -> frozenset[str]:
    """The text's maximal runs of letters, as written."""
    return frozenset(_LETTERS.findall(text))


_STATE_CODES = frozenset(US_STATES)
_STATE_NAME_HEADS = frozenset(name.split()[0].casefold() for name in US_STATES.values())


@lru_cache(maxsize=256)
def clinical_record(text: str) -> bool:
    """A clinical note (several lines of shorthand, or UPPER CASE), where the i2b2 and PhysioNet
    conventions hold; health questions and everyday prose follow PII annotation instead."""
    return mostly_upper(text) or ("\n" in text.strip() and not is_prose(text))


@lru_cache(maxsize=256)
def mixed_case(text: str) -> bool:
    """Mixed-case writing, where a capital marks a name; not UPPER CASE, nor notes typed in lower case."""
    return not mostly_upper(text) and _capitalised_share(text) > 0.12


def _is_eponym_use(text: str, end: int) -> bool:
    """`Crohn's disease`, `Murphy sign`: the word just before a disease-like head noun."""
    tail = re.match(r"(?:'s|’s|s')?\s+([A-Za-z]+)", text[end : end + 30])
    return bool(tail and tail.group(1).lower() in EPONYM_HEADS)


def _name_tokens(
    text: str, start: int, end: int, upper: bool, strong: bool, weak: bool = False, backwards: bool = False
) -> Iterator[_Span]:
    """Tokens of a name found by its context, up to the first word that cannot continue a name.

    The first word after a title is a name whatever its case ("dr. mcgreavy"); later words must be
    capitalised in mixed-case text, or census names in single-case text. After a weak cue ("per",
    "with") a word must be a census name that is not also an English word ("with little").
    """
    mixed = not upper and any(c.isupper() for c in text[start:end])
    words = [w for w in _WORD.finditer(text, start, end) if w.group().lower() != "and"]
    previous = ""
    for index, word in enumerate(reversed(words) if backwards else words):
        token = word.group()
        low = token.lower()
        low = low[:-2] if low.endswith(("'s", "’s")) else low
        if len(token) == 1:
            if not text.startswith(".", word.end()):
                break  # an initial has its period; a lone letter is a grade, a side or an abbreviation
            if index > 0:
                yield _Span("PERSON", word.start(), word.end() + 1, MEDIUM)
                continue
        surname_term = (strong or backwards) and index == 0 and low in MEDICAL_TERMS and is_name_word(low)
        if (low in NOT_NAMES and not surname_term) or _is_eponym_use(text, word.end()):
            break  # but "Dr. Walker" and "Dr. Early" are people
        if mixed and not strong and token.isupper() and len(token) > 1:
            break  # an acronym in mixed-case text ("with CHF")
        # A name in capitals inside mixed-case text continues in capitals ("Mr. EDWIN WOJCIAKOWSKI").
        capitalised = (token[0].isupper() and not token.isupper()) or len(token) == 1
        capitalised = capitalised or (index > 0 and token.isupper() and previous.isupper())
        previous = token
        parts = low.split("-")  # "HARTLEY-VOSS": a double-barrelled surname
        named = (is_plain_name(low) or low in first_names()) if weak else all(map(is_name_word, parts))
        # Not a word of the language (nor a misspelt one): after a relative or a title, a name
        # ("husband branimir", but not "daughter and grandaughter").
        unknown = len(low) > 2 and all(p.isalpha() and not is_english(p) for p in parts)
        unknown = unknown and (is_name_word(low) or not _misspelt(low))
        if weak and not named:
            break
        if (
            index == 0
            and not (strong or backwards or capitalised)
            and is_english(low)
            and low not in first_names()
        ):
            break  # "husband went home", "SON BROUGHT HIM": a word, though also a census surname
        if index == 0:
            if strong:
                score = STRONG if named or capitalised or upper else MEDIUM
            elif (named or unknown) and (capitalised or not mixed):
                score = MEDIUM
            else:
                score = WEAK if capitalised else DOUBT
        elif (mixed and not capitalised) or (not mixed and not (named or unknown)):
            break
        else:
            score = MEDIUM
        if low in EPONYMS and not strong:
            # But "Maria Parkinson RN": a capitalised surname right before a credential.
            score = STRONG if backwards and index == 0 and token[0].isupper() else DOUBT
        yield _Span("PERSON", word.start(), word.end(), score)


@lru_cache(maxsize=4096)
def _misspelt(word: str) -> bool:
    """A long word one deletion, swap or changed letter away from English ("assymptomatic",
    "percautions", "decesion")."""
    if len(word) < 7:
        return False
    deletions = (word[:i] + word[i + 1 :] for i in range(len(word)))
    swaps = (word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1))
    changes = (word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in "aeiou")
    return any(
        is_english(candidate) for candidates in (deletions, swaps, changes) for candidate in candidates
    )


_NAME_LABEL = re.compile(
    r"\b(?:name|patient(?:\s+name)?|pt\s+name|last\s+name|first\s+name|full\s+name|signed|"
    r"account\s+holder)\s*(?:is|:|=)\s*((?-i:[A-Z])[^\W\d_]*(?:[ \t]+(?-i:[A-Z])[^\W\d_'’.-]*\.?){0,3})",
    re.IGNORECASE,
)
_INITIAL_NAME = re.compile(r"(?<![\w.'’/])([A-Za-z])\.\s?([^\W\d_][\w'’-]+)")
_SPEAKS = re.compile(
    r"\b([A-Za-z][a-z]+|[A-Z]+)\s+(?i:called|visited|phoned|reports?|reported|states?|stated|said|says|spoke|"
    r"is\s+speaking|was\s+here|in\s+to\s+visit|at\s+bedside|is\s+aware|aware|updated|notified|informed|"
    r"came\s+in|arrived|left|today|will\s+call|made\s+aware)\b"
)


def _initial_names(text: str) -> Iterator[_Span]:
    """An initial and a surname ("W. KOWALCZYK", "d. ferraro", "m. o'hara"); not "E. coli"."""
    mixed = mixed_case(text)
    for match in scan(_INITIAL_NAME, text):
        surname = match.group(2)
        low = surname.lower()
        low = low[2:] if low[:2] in ("o'", "o’") and low[2:] != "clock" else low  # "m. o'hara"
        if low in NOT_NAMES or low in EPONYMS or is_english(low):
            continue
        # A census surname, or in mixed-case text a capitalised word of no language ("D. Dravn").
        unknown = mixed and surname[0].isupper() and not surname.isupper() and len(low) > 2
        if not (is_name_word(low) or (unknown and match.group(1).isupper())):
            continue
        yield _Span("PERSON", match.start(1), match.end(2), MEDIUM)


# "o'hara", "Dr. o malley": an Irish surname after O, in any case (after a title also with a space).
_O_SURNAME = re.compile(
    rf"(?<![\w'’])(?-i:O|o)['’]([A-Za-z]{{3,}})\b|{_TITLE}((?-i:O|o)\s([A-Za-z]{{3,}}))\b", re.IGNORECASE
)


def _o_surnames(text: str) -> Iterator[_Span]:
    for match in scan(_O_SURNAME, text):
        group = 1 if match.group(1) else 3
        low = match.group(group).lower()
        if low != "clock" and is_name_word(low) and low not in NOT_NAMES:
            start = match.start() if group == 1 else match.start(2)
            yield _Span("PERSON", start, match.end(group), MEDIUM)


_TITLE_CASE_WORD = re.compile(r"\b(?-i:[A-Z][a-z][a-z'’-]+)\b")


def _census_names(text: str) -> Iterator[_Span]:
    """In mixed-case writing, a capitalised census name that is no word of English nor of the
    clinic ("Okafor aware", "spoke with Ferraro", "Harriet called") is a person wherever it stands."""
    if not mixed_case(text):
        return
    for match in scan(_TITLE_CASE_WORD, text):
        low = match.group().lower()
        low = low[:-2] if low.endswith(("'s", "’s")) else low
        if not is_name_word(low) or low in NOT_NAMES or low in EPONYMS:
            continue
        if not (is_english(low) or _misspelt(low)):
            yield _Span("PERSON", match.start(), match.start() + len(low), WEAK)


def _first_name_subjects(text: str) -> Iterator[_Span]:
    """A census first name doing what relatives and staff do ("bob visited", "MARTA IS SPEAKING")."""
    for match in scan(_SPEAKS, text):
        low = match.group(1).lower()
        if low in first_names() and low not in NOT_NAMES and low not in EPONYMS:
            yield _Span("PERSON", match.start(1), match.end(1), MEDIUM)


def _list_names(text: str, upper: bool) -> Iterator[_Span]:
    """A census first name followed by a surname-like word ("Anna S.", "EDWIN WOJCIAKOWSKI")."""
    firsts = first_names()
    # The surname is in a lookahead: "CASEWORKER GRETA STANOWICZ" must still try "GRETA STANOWICZ".
    for match in re.finditer(r"\b([A-Za-z][a-z'’-]+|[A-Z][A-Z'’-]+)(?=\s+([A-Z](?:\.|[A-Za-z'’-]+)))", text):
        first, last = match.group(1), match.group(2)
        if not first[0].isupper() or first.lower() not in firsts or first.lower() in NOT_NAMES:
            continue
        if last.lower().rstrip(".") in NOT_NAMES or _is_eponym_use(text, match.end()):
            continue
        if upper and not (first.isupper() and last.isupper()):
            continue
        if upper and is_english(first) and not is_name_word(last.rstrip(".")):
            continue  # "FRANK BLEEDING", "RUSTY SPUTUM"
        if not upper and not (last[0].isupper() and not first.isupper()):
            continue
        known_last = is_name_word(last.rstrip("."))
        score = MEDIUM if (known_last or last.endswith(".")) else WEAK
        if first.lower() in EPONYMS or last.lower() in EPONYMS:
            score = DOUBT
        yield _Span("PERSON", match.start(), match.end(2), score)


# A contact listed with a phone label: "Jane Roe cell# 555-...", "John Doe (home): ...".
_BEFORE_PHONE = re.compile(
    r"(?-i:\b([A-Z][a-z'’-]+)\s+([A-Z][a-z'’-]+))\s*[,:-]?\s*\(?"
    r"(?:cell|home|work|phone|ph|tel|mobile|beeper|pager)\b\s*(?:#|no\b|number\b|:)",
    re.IGNORECASE,
)
_FAMILY_OF = re.compile(r"\b([^\W\d_][\w'’-]+)\s+(?:family|families|household)\b", re.IGNORECASE)
_SIGNATURE = re.compile(
    r"(?:\A|[.!?\n])\s*([^\W\d_][\w'’-]*)(?:\s+[A-Za-z]\.)?(?:\s+([^\W\d_][\w'’-]*))?[\s.,]*\Z"
)


def _signature(text: str) -> Iterator[_Span]:
    """A note signed with a first name at its very end ("... 1400U/HR.  HARRIET")."""
    match = _SIGNATURE.search(text, max(0, len(text) - 60))
    if match is None:
        return
    first, last = match.group(1).lower(), (match.group(2) or "").lower()
    if first not in first_names() or first in NOT_NAMES or last in NOT_NAMES:
        return
    if last or not is_english(first):
        yield _Span("PERSON", match.start(1), match.end(2) if last else match.end(1), MEDIUM)


_LOWER_WORD = re.compile(r"[a-z][a-z'’-]+")


def _lowercase_names(text: str) -> Iterator[_Span]:
    """In notes typed all in lower case, a census first name (or two) before a word of no
    language ("pat brimsworth", "mary theresa petrakou"), or a first name of four letters or more
    that is no word itself ("spoke with rosalind"): capitals cannot tell the name."""
    if _capitalised_share(text) > 0.05:
        return
    firsts = first_names()
    words = list(scan(_LOWER_WORD, text))
    for index, word in enumerate(words):
        if word.group() not in firsts or word.group() in NOT_NAMES:
            continue
        low = word.group()
        if len(low) > 3 and low not in EPONYMS and not (is_english(low) or _misspelt(low)):
            yield _Span("PERSON", word.start(), word.end(), MEDIUM)
        if index + 1 == len(words):
            break
        last = index + 1
        if words[last].group() in firsts and last + 1 < len(words):
            last += 1  # a middle name
        chain = words[index : last + 1]
        if any(not text[a.end() : b.start()].isspace() for a, b in pairwise(chain)):
            continue
        surname = words[last].group()
        if surname in NOT_NAMES or surname in EPONYMS or is_english(surname) or _misspelt(surname):
            continue
        if word.group() in EPONYMS or _is_eponym_use(text, words[last].end()):
            continue  # "mallory weiss tear"
        yield _Span("PERSON", word.start(), words[last].end(), MEDIUM)


class FilteredSpacyRecognizer(EntityRecognizer):
    """spaCy's named entities, trusted only where the small English model is reliable.

    On mostly UPPER CASE text the model tags almost every word run as an organisation, so there its
    entities only lower the sample's confidence. Acronyms and eponym uses are never people.
    """

    LABELS: ClassVar[dict[str, str]] = {
        "PERSON": "PERSON",
        "GPE": "LOCATION",
        "LOC": "LOCATION",
        "FAC": "FACILITY",
        "ORG": "ORGANIZATION",
        "NORP": "NRP",
        "DATE": "DATE",
    }

    def __init__(self) -> None:
        super().__init__(supported_entities=sorted(set(self.LABELS.values())), name="FilteredSpacy")

    def load(self) -> None:
        """The spaCy model is owned by the NLP engine."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None:
            return []
        upper = mostly_upper(text)
        prose = not upper and is_prose(text)
        results = []
        for ent in nlp_artifacts.entities:
            entity = self.LABELS.get(ent.label_)
            if entity is None or entity not in entities:
                continue
            score = self._score(text, ent, entity, upper, prose)
            start = ent.start_char
            if entity == "PERSON" and not prose and (title := _TITLE_AT.match(text, start, ent.end_char)):
                start = title.end()  # "Dr. Murphy" in a note: the name without its title
            if score > 0 and start < ent.end_char:
                source = {RecognizerResult.RECOGNIZER_NAME_KEY: f"spacy:{ent.label_}"}
                results.append(
                    RecognizerResult(entity, start, ent.end_char, score, recognition_metadata=source)
                )
                if prose and entity in ("PERSON", "ORGANIZATION"):
                    results.extend(
                        RecognizerResult(entity, start, end, score, recognition_metadata=dict(source))
                        for start, end in _coordinated(text, ent.start_char, ent.end_char)
                    )
        return results

    @staticmethod
    def needs_model(text: str) -> bool:
        """Whether any entity the model could find in `text` would score above zero, so that texts
        where none could skip the model. `_score` gives an entity a score only for a capitalised
        word, a name particle that is not common vocabulary ("de la"), or a calendar word in a
        prose date; entities are substrings of the text, so a text with none of them gains
        nothing from the model (a test checks this against the model itself)."""
        if mostly_upper(text):
            return False
        if any(c.isupper() for c in text) or _NAME_PARTICLE.search(text):
            return True
        return bool(is_prose(text) and _CALENDAR.search(text))

    @staticmethod
    def _score(text: str, ent: Any, entity: str, upper: bool, prose: bool) -> float:
        """Clinical shorthand ("abd soft", "Fentanyl", "Cardiac") fools the model; real names are
        capitalised word by word, and a person's name has a census name in it. In ordinary prose
        (few clinical abbreviations) the model is trusted, as it was trained on such text."""
        words = _WORD.findall(ent.text)
        if upper or not words:
            return 0.0  # on UPPER CASE text the model's entities are noise
        lows = [w.lower().removesuffix("'s").removesuffix("’s") for w in words]
        if all(w in NOT_NAMES or w in EPONYMS for w in lows) or _is_eponym_use(text, ent.end_char):
            return 0.0
        drug = any(w in MEDICAL_TERMS and w not in FACILITY_WORDS for w in lows)
        if not prose and (drug or all(len(w) == 1 for w in lows)):
            return 0.0  # "Albuterol and Atrovent MDI's", "G.I.", "C.I." in a note
        if lows[-1] in EPONYM_HEADS or (entity == "NRP" and not prose):
            return 0.0  # "Framingham Risk Score"; nationality is no identifier in clinical text
        if entity == "DATE":
            # Durations and ages ("two weeks", "55-year-old") are not dates.
            return MEDIUM if prose and _CALENDAR.search(ent.text) and not _DURATION.search(ent.text) else 0.0
        acronym = len(words) == 1 and words[0].isupper()
        # A lone capitalised word opening a sentence ("Dyspnea with...", "Oxygen saturation...") is
        # capitalised by grammar, not because it names someone: it needs a census name to count.
        opener = (
            entity != "PERSON"
            and len(words) == 1
            and _opens_sentence(text, ent.start_char)
            and not is_name_word(lows[0])
        )
        if prose and not acronym and not opener and any(w[0].isupper() for w in words):
            return MEDIUM
        if "\n" in ent.text.strip() or any(c in ent.text for c in "/&+"):
            return 0.0
        titled = all(
            (w[0].isupper() and not (w.isupper() and len(w) > 1)) or w.lower() in _NAME_PARTICLES
            for w in words
        )
        if not titled:
            return 0.0
        named = any(is_name_word(w) for w in lows if w not in NOT_NAMES)
        if entity == "PERSON":
            return STRONG if named else DOUBT
        if entity == "ORGANIZATION":
            return MEDIUM if named or any(w in FACILITY_WORDS for w in lows) else DOUBT
        return MEDIUM if named or len(words) >= 2 else DOUBT


def _opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;\n"


_CALENDAR = re.compile(rf"\d|\b(?:{_MONTH}|mon|tues?|wed|thu(?:rs)?|fri|sat|sun)(?:day)?\b", re.IGNORECASE)
_DURATION = re.compile(
    r"\b(?:years?|yrs?|months?|weeks?|days?|hours?|decades?)[- ]?(?:old|ago|long|later|earlier)?\b|\bage",
    re.IGNORECASE,
)
# Shorthand that marks clinical writing, where the small model's entities need the filters above.
_SHORTHAND = re.compile(
    r"(?<![\w/])(?:pt|pts|hx|h/o|s/p|c/o|w/|y/o|yo|dx|tx|rx|sx|fx|prn|bid|tid|qid|qd|q\d+h?|mg|mcg|cc|ml|"
    r"meq|iv|po|bp|hr|rr|sob|cp|abd|cxr|ekg|ecg|ngt|ogt|abg|vss|afeb|neuro|resp|gi|gu|cv|icu|md|rn|"
    r"mrn|dob|npo|ett|picc|hct|wbc|inr|cabg|chf|copd|cad|mi|afib|dm|htn|ckd|esrd|cva|tia|patients?|"
    r"diagnos[a-z]+|history|treat[a-z]*|therap[a-z]+|guidelines?|prescri[a-z]+|[\w-]*year-old|"
    r"diseases?|syndromes?|symptoms?|medications?|doses?|dosing|surgery|surgical|infections?|chronic|"
    r"acute|clinical|post-op|pre-op|admitted|discharged|hospital|clinic|physician|nurse|"
    r"management|managing|efficacy|contraindications?|side\s+effects)(?![\w/])",
    re.IGNORECASE,
)


@lru_cache(maxsize=256)
def is_prose(text: str) -> bool:
    """Ordinary prose, where the model is at home: clinical words in under one word in forty.
    Cached: several recognizers ask it of the same document in a row."""
    words = max(1, text.count(" ") + 1)
    return len(_shorthand(text)) * 40 < words


@lru_cache(maxsize=256)
def _shorthand(text: str) -> tuple[str, ...]:
    """The clinical shorthand words of a text, read once for `is_prose` and `everyday`."""
    return tuple(_SHORTHAND.findall(text))


# Words of bedside notes and symptoms that the prose test above does not need to know.
_BEDSIDE = re.compile(
    r"\b(?:vent(?:ed|ilated|ilator)?|peep|fio2|cpap|psv|sats?|intubated|extubated|trach|sedated|suction(?:ed)?|"
    r"sxn|sputum|secretions|rhonchi|gtt|oob|tidal|breath|wean(?:ed|ing)?|pressors?|propofol|morphine|"
    r"bedside|stable|tolerat(?:ed|ing)|diet|chart|notes?|chest|pain|oxygen|saturation|dyspn(?:o)?ea|nebuli[sz]ed|"
    r"fever|cough|nausea|vomiting|tablets?|mg|blood|pressure|pulse|rash|wound|hemodynamic(?:s|ally)?|transfus(?:ed|ion)|"
    r"prbc'?s?|infus(?:ed|ing|ion)|urine|stool|foley|insulin|heparin|sedation|incision|dressing|dosage|pills?|"
    r"medicines?|drugs?|vitamins?|supplements?|prescription|pharmacy|doctor|"
    # Drug names by their stems ("amoxicillin", "omeprazole", "lisinopril", "ibuprofen").
    r"\w{3,}(?:cillin|mycin|cycline|floxacin|azole|pril|sartan|olol|statin|dipine|tidine|triptan|afil|mab|tinib|"
    r"vir|azepam|zolam|codone|profen|oxetine|semide|thiazide|gliptin|glitazone|formin|parin|xaban|gatran|"
    r"lukast|olone|asone|caine))\b",
    re.IGNORECASE,
)


# "Dr. Jones", "cc 4111...", "I'm 31 y/o", "the Treaty of Rome": not only clinical.
_EVERYDAY_TOO = frozenset({"dr", "cc", "y/o", "treaty", "treaties"})


@lru_cache(maxsize=256)
def everyday(text: str) -> bool:
    """Everyday writing, not a clinical note: at most one clinical word in eighty (two capitals such
    as "MD" or "PA" name a region in an address; "Dr" and "cc" are everyday too). Cues such as
    "returned to" or "Spanish" say where a person lives in the first, nothing in the second
    ("returned to 1.1", "Spanish speaking")."""
    words = text.count(" ") + 1
    clinical = 0
    # Stop at the first clinical word over the allowance: most notes are told by their first lines.
    for word in chain((match.group() for match in scan(_BEDSIDE, text)), _shorthand(text)):
        if (len(word) == 2 and word.isupper()) or word.lower() in _EVERYDAY_TOO:
            continue
        clinical += 1
        if clinical * 80 >= words:
            return False
    return True


def _alternation(phrases: frozenset[str]) -> str:
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))


# A country, with its qualifier and the postal code that follows it at the end of an address
# ("Cyprus (Greek) 1010"); a nationality, faith or party, singular or plural.
_COUNTRY = re.compile(
    rf"\b(?:{_alternation(COUNTRIES)})\b(?:\s*\([^\W\d_]+\))?(?:\s+\d{{4,6}}\b)?", re.IGNORECASE
)
_NATIONALITY = re.compile(rf"\b(?:{_alternation(NATIONALITIES)})(?:s|es)?\b", re.IGNORECASE)
_WORLD_HEADS = frozenset(phrase.split()[0] for phrase in COUNTRIES | NATIONALITIES)


def _world_places(text: str) -> Iterator[_Span]:
    """Countries and nationalities in everyday prose; a country capitalised ("turkey", "chile" are
    food) unless the whole text is lower case."""
    words = {w.lower() for w in _WORD.findall(text)}
    if not any(w in _WORLD_HEADS or w[:-1] in _WORLD_HEADS or w[:-2] in _WORLD_HEADS for w in words):
        return  # the long alternations below cost more than this look-up
    lower = not any(c.isupper() for c in text)
    for entity, pattern, name in (("LOCATION", _COUNTRY, "country"), ("NRP", _NATIONALITY, "nationality")):
        for match in scan(pattern, text):
            if lower or entity == "NRP" or match.group()[0].isupper():
                yield _Span(entity, match.start(), match.end(), MEDIUM, name)


# "rehab(good samaritan Memorial)", "MERCY HOSPITAL": hospital-name words before a facility
# word, in any case; one word alone only where it is no ordinary adjective ("a good rehab").
_HOSPITAL_NAME = re.compile(
    rf"\b((?:(?:{_alternation(HOSPITAL_NAME_WORDS)})\s+){{1,3}}){_FACILITY_HEAD}\b", re.IGNORECASE
)
_ORDINARY_NAME_WORDS = frozenset({"good", "regional", "union", "memorial", "heart", "cross", "holy"})
_REGION = re.compile(rf"\b(?:{_alternation(US_REGIONS)})\b", re.IGNORECASE)
_REGION_HEADS = frozenset(phrase.split()[0] for phrase in US_REGIONS)
_NAMED_PLACES = (
    # "W/U BY HCMC": a medical centre's initials.
    ("medical_center_initials", "FACILITY", re.compile(r"\b(?-i:[A-Z]{2,4}MC)\b")),
    # "a bed @ St J.": a saint's hospital by its initial.
    (
        "saint_initial",
        "FACILITY",
        re.compile(r"(?:@|\bat|\bto|\bfrom)\s+((?-i:St|ST)\.?\s+(?-i:[A-Z])\.?)(?=[\s,;)]|$)"),
    ),
    # "back to the general hospital": a town's general hospital, named by its kind.
    ("general_hospital", "FACILITY", re.compile(r"\bthe\s+(general\s+hosp(?:ital)?)\b", re.IGNORECASE)),
)
# "WIFE CEO OF ZYLOTECH", "works for Acme Tools": an employer.
_EMPLOYER = re.compile(
    r"\b(?:ceo|cfo|coo|president|owner|founder|employee|works|worked|working|employed)\s+"
    r"(?:of|at|for|by)\s+(?:the\s+)?((?-i:[A-Z](?:[\w&'’-]|\.\w)*)(?:[ \t]+(?-i:[A-Z](?:[\w&'’-]|\.\w)*)){0,3})",
    re.IGNORECASE,
)


def _named_places(text: str) -> Iterator[_Span]:
    """Places and employers named by their kind of name: hospital-name words, a medical centre's
    initials, regions of a state, an employer after a job word. In mixed-case text a region must
    be capitalised; in single-case text an employer must be a word of no language ("ZYLOTECH")."""
    mixed = mixed_case(text)
    hospital_names = scan(_HOSPITAL_NAME, text) if may_hold(text, HOSPITAL_NAME_WORDS) else ()
    for match in hospital_names:
        words = match.group(1).lower().split()
        if len(words) > 1 or words[0] not in _ORDINARY_NAME_WORDS:
            yield _Span("FACILITY", match.start(), match.end(), MEDIUM, "hospital_name")
    for name, entity, pattern in _NAMED_PLACES:
        for match in scan(pattern, text):
            group = 1 if pattern.groups else 0
            yield _Span(entity, match.start(group), match.end(group), MEDIUM, name)
    for match in scan(_REGION, text) if may_hold(text, _REGION_HEADS) else ():
        if not mixed or match.group()[0].isupper():
            yield _Span("LOCATION", match.start(), match.end(), MEDIUM, "us_region")
    for match in scan(_EMPLOYER, text):
        first = match.group(1).split()[0].lower()
        if first in NOT_NAMES or (not mixed and is_english(first)):
            continue
        yield _Span("ORGANIZATION", match.start(1), match.end(1), WEAK, "employer")


# Capitals of the Latin, Greek and Cyrillic alphabets ("Ágota", "Čapek", "ΑΘΗΝΑ").
_CAPITALS = "A-Z" + "".join(chr(i) for i in range(0xC0, 0x530) if chr(i).isupper())
_PROPER = re.compile(
    rf"(?<![\w'’@/.-])(?-i:[{_CAPITALS}])(?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?"
    rf"(?:[ \t]+(?:(?-i:[{_CAPITALS}])(?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?|(?:van|von|de|der|den|ten|da|di|del|la|le)(?=[ \t]+(?-i:[{_CAPITALS}])))){{0,3}}"
)
# A lower-case word, its initial and the next word (in a lookahead, so that every word is tried as
# a first name: "follow up with greta vandermolen").
_LOWER_NAME = re.compile(
    r"(?<![\w'’@/.-])([a-zà-ÿ][^\W\d_]+)(?=((?:[ \t]+[^\W\d_]\.?)?[ \t]+([^\W\d_]{2,}))?)"
)


_OCCUPATION = re.compile(rf"\b(?:{'|'.join(sorted(OCCUPATIONS))})\b(?!['’])", re.IGNORECASE)
_FIELD_START = re.compile(r"(?:^|\n|  |\bas(?:\s+an?)?\s)[ \t]*$", re.IGNORECASE)
# Words of a job title before its head noun, on the same line: "Senior payroll and benefits".
_TITLE_WORD = re.compile(r"(?:[^\W\d_][\w'’-]*|,)[ \t]*$")


_NAME_WORD = r"[^\W\d_][\w'’-]*"
# Cues to a name in everyday writing, whatever its case: the strong ones name whatever follows
# ("she named him Will"), the others need a name that is no English word ("with tovah").
_EVERYDAY_NAME_CUE = re.compile(
    r"\b(?:(named(?:\s+(?:him|her|them))?|call(?:s|ed)?\s+me|name\s+is|name\s*:|name\?)|"
    r"i'm|i\s+am|says|said|with|add|speak\s+to|heard|starring|by|to|for|and)\s+"
    rf"({_NAME_WORD}(?:[ \t]+[^\W\d_]\.?)?(?:[ \t]+{_NAME_WORD})?)",
    re.IGNORECASE,
)
# A speaker ("Tovah: \"Who are you?\"") and a relative's or an address's owner ("Tovah's son").
_OWNER = re.compile(
    rf"(?:^|(?<=[\s\"“]))({_NAME_WORD}):\s*[\"“]|\b({_NAME_WORD})['’]s\s+(?:daughter|son|kid|child|wife|husband|"
    r"mother|father|sister|brother|partner|address|phone|email|account)\b",
    re.IGNORECASE,
)


# A contact card or signature block: fields split by two spaces, ">", "•" or runs of "?".
_FIELD_SPLIT = re.compile(r"[ \t]{2,}|\n|[ \t]*(?:>|•|\?{3,})[ \t]*")


def _card_fields(text: str) -> Iterator[_Span]:
    """The short fields of a contact card that holds a street address or phone number: the name,
    job and firm written beside them ("harriet berg  payroll clerk  nordhavn traders  4 fjordgata").
    Labels ("Phone:") and fields with digits or sentence punctuation are left to the other rules."""
    splits = [(m.start(), m.end()) for m in scan(_FIELD_SPLIT, text)]
    if len(splits) < 3 or not re.search(r"\d{3}", text):
        return
    bounds = [(0, 0), *splits, (len(text), len(text))]
    fields = [(left[1], right[0]) for left, right in pairwise(bounds) if right[0] > left[1]]
    for start, end in fields:
        value = text[start:end].strip()
        words = value.split()
        if not 1 <= len(words) <= 5 or any(c.isdigit() or c in '?!:;"' for c in value):
            continue
        if value.endswith(".") and not value.lower().endswith(("inc.", "ltd.", "co.")):
            continue
        if all(_bare(w) in STOP_WORDS for w in words):
            continue
        yield _Span("ORGANIZATION", start, start + len(text[start:end].rstrip()), WEAK)


def _census_name(word: str) -> bool:
    low = _bare(word)
    return low not in NOT_NAMES and (low in first_names() or low in last_names())


def _cued_everyday_names(text: str) -> Iterator[_Span]:
    """Names in everyday writing found by their cue, in any case ("call me tovah", "Amos: \"Hi\"",
    "I'm Amos's daughter"): a census name or a word that is no English word."""
    for match in scan(_EVERYDAY_NAME_CUE, text):
        words = list(re.finditer(r"\S+", match.group(2)))
        first = words[0].group()
        strong = match.group(1) is not None
        if not (_unknown(first) or (_census_name(first) and (strong or not is_english(_bare(first))))):
            continue
        end = match.start(2) + words[0].end()
        for word in words[1:]:
            token = word.group()
            if not (len(token.rstrip(".")) == 1 or _unknown(token) or _census_name(token)):
                break
            end = match.start(2) + word.end()
        end -= text[match.start(2) : end].endswith(".")
        yield _Span("PERSON", match.start(2), end, WEAK, "cued_everyday_name")
    for match in scan(_OWNER, text):
        group = 1 if match.group(1) else 2
        if _unknown(match.group(group)) or _census_name(match.group(group)):
            yield _Span("PERSON", match.start(group), match.end(group), WEAK, "name_owner")


_EVERYDAY_PLACE = re.compile(
    r"\b(?:in|from|to|at|near|visit|visiting|grew\s+up\s+in|city)\s+([^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,4})",
    re.IGNORECASE,
)
_PLACE_PARTICLES = frozenset(
    {"de", "la", "le", "les", "du", "des", "del", "della", "di", "da", "do", "dos", "das"}
    | {"pri", "nad", "pod", "na", "am", "an", "der", "den", "bei", "sur", "sous"}
)


def _everyday_places(text: str) -> Iterator[_Span]:
    """The place after "in/from/to/at" in everyday writing, in any alphabet and, where the whole
    text is lower case, in lower case ("I am in ΠΑΤΡΑ", "grew up in bodø"): words that are not
    English, with the particles between them ("Bourg de Péage")."""
    lower = not any(c.isupper() for c in text)
    for match in scan(_EVERYDAY_PLACE, text):
        end = None
        for word in re.finditer(r"\S+", match.group(1)):
            token = word.group().rstrip(".,")
            if not token or not (lower or token[0].isupper()):
                break
            if _bare(token) in _PLACE_PARTICLES and end is not None:
                continue
            if not _unknown(token):
                break
            end = match.start(1) + word.start() + len(token)
        if end is not None:
            yield _Span("LOCATION", match.start(1), end, WEAK)


def _job_titles(text: str) -> Iterator[_Span]:
    """A job title in everyday writing, a quasi-identifier next to a name ("Ana Horvat, the senior
    tax adviser"): the occupation noun with the words before it on its line, back to a stop
    word other than "and" (at most five words). A bare lower-case noun ("the driver", "my manager")
    names nobody unless it fills a field or follows "as"; a plural names a group."""
    for match in scan(_OCCUPATION, text) if may_hold(text, OCCUPATIONS) else ():
        start, words = match.start(), 0
        while words < 5:
            before = _TITLE_WORD.search(text, max(0, start - 40), start)
            if before is None or before.end() != start:
                break
            word = before.group().strip()
            if word != "," and (word.lower() in STOP_WORDS - {"and"} or _CALENDAR.fullmatch(word)):
                break
            if text[before.start() - 2 : before.start()] == "  ":
                start = before.start()
                break  # two spaces open the field of a card
            start, words = before.start(), words + (word != ",")
        while text[start] in ", " or text.startswith("and ", start):
            start += 4 if text.startswith("and ", start) else 1
        bare = start == match.start() and match.group().islower()
        if not bare or _FIELD_START.search(text, max(0, start - 8), start):
            yield _Span("TITLE", start, match.end(), WEAK)


# Any age, in everyday writing only (a quasi-identifier there; clinical notes keep ages under 90).
_ANY_AGE = re.compile(
    r"\b(\d{1,3})(?=[- ]?(?:y/?o\b|y\.o\.|years?[- ]old\b|yrs?[- ]old\b))|"
    r"\b(?:turn(?:s|ed|ing)?|age\s+of|aged|(?:he|she|i|you|they)\s+(?:was|were|am|is|are))\s+(\d{1,3})\b"
    r"(?![.,]?\d|\s*(?!years?\b|yrs?\b|y/?o\b)[^\W\d_%]|\s*%)",
    re.IGNORECASE,
)
_FIRM = rf"(?-i:[{_CAPITALS}])[\w'’&.-]*"
# A firm: capitalised words ending in a company word ("Harbour Ltd.", "Northgate Technologies"), or
# surnames listed as a partnership ("Baxter, Lowe and Pryce", "Hughes and Sons").
_COMPANY_WORD = (
    r"(?-i:Inc|Ltd|LLC|LLP|PLC|Corp|Corporation|Co|Company|Group|Partners|Associates|Technologies|Technology|"
    r"Software|Systems|Solutions|Consulting|Agency|Markets|Holdings|Labs|Media|Movers|Insurance|Bank|Capital|"
    r"Club|Foundation|Industries|International|Enterprises|Ventures|Networks|Services|Analytics|Research|"
    r"Sons|Brothers|GmbH|AG|SA|BV|AB|AS|Oy)\b\.?"
)
_ORGANIZATION = re.compile(
    rf"(?<![\w'’])(?:{_FIRM},[ \t]+{_FIRM},?[ \t]+(?:and|&)[ \t]+{_FIRM}(?:[ \t]+{_COMPANY_WORD})?|"
    rf"(?:{_FIRM}[ \t]+(?:(?:and|&)[ \t]+)?){{1,4}}{_COMPANY_WORD})"
)


def _bare(word: str) -> str:
    """The word without its full stop, possessive or contraction ("Meza's" -> "meza", "I'm" -> "i")."""
    return word.lower().rstrip(".").partition("'")[0].partition("’")[0]


def _unknown(word: str) -> bool:
    """Not a word of English nor of clinical shorthand: a name, a brand, a foreign place."""
    low = _bare(word)
    return len(low) > 2 and low not in NOT_NAMES and not is_english(low) and not _CALENDAR.fullmatch(low)


def _everyday_names(text: str) -> Iterator[_Span]:
    """In everyday writing, proper nouns are people, organisations and places: a run of capitalised
    words holding a census name or a word that is not English ("Tamas K Veress", "Jorunn",
    "Quillbyte"), and a lower-case census first name with a surname that is no English word
    ("harriet halvorsen"), or alone where the whole text is lower case and it is no English word."""
    lower = not any(c.isupper() for c in text)
    for match in scan(_LOWER_NAME, text):
        first, last = match.group(1), match.group(3)
        surname = last is not None and _unknown(last) and (lower or last.islower())
        # In mixed-case text a lower-case name needs its surname ("with greta vandermolen").
        if first in first_names() and first not in NOT_NAMES and (surname or (lower and _unknown(first))):
            yield _Span(
                "PERSON",
                match.start(1),
                match.end(2) if surname else match.end(1),
                MEDIUM,
                "lowercase_full_name",
            )
    if lower:
        return
    for match in scan(_ORGANIZATION, text):
        yield _Span("ORGANIZATION", match.start(), match.end(), MEDIUM, "firm")
    for match in scan(_PROPER, text):
        words = list(re.finditer(r"\S+", match.group()))
        # Sentence openers and contractions before the name ("Hi Tomas", "I'm Harriet Berg").
        while words and (_bare(words[0].group()) in NOT_NAMES or is_english(_bare(words[0].group()))):
            if _bare(words[0].group()) in first_names() and len(words) > 1 and _unknown(words[1].group()):
                break  # "Faith Oyelaran": an English word that is also a first name, before a surname
            words.pop(0)
        # ... and common words after it ("the Quillbyte Orchestra"), which a name found once would
        # otherwise redact at every mention.
        while len(words) > 1 and is_english(_bare(words[-1].group())) and not _census_name(words[-1].group()):
            words.pop()
        if not words:
            continue
        lows = [_bare(w.group()) for w in words]
        named = any(w in first_names() and not is_english(w) for w in lows)
        unknown = [w for w in words if _unknown(w.group())]
        if named or (unknown and (len(words) > 1 or not words[0].group().isupper())):
            start, end = match.start() + words[0].start(), match.start() + words[-1].end()
            end -= text[start:end].endswith(".")
            yield _Span("PERSON", start, end, MEDIUM if named else WEAK, "proper_name")
            # Names listed with this one are names ("Veress, Baker and Lund").
            for other_start, other_end in _coordinated(text, start, end):
                yield _Span("PERSON", other_start, other_end, WEAK, "proper_name")


_AFTER = re.compile(
    r"(?:\s*,\s*(?:and\s+|&\s+)?|\s+and\s+|\s*&\s*)((?-i:[A-Z][\w'’-]+)(?:\s+(?-i:[A-Z][\w'’-]+))?)"
)
_BEFORE = re.compile(r"((?-i:[A-Z][\w'’-]+))(?:\s*,\s*|\s+and\s+|\s*&\s*)$")


def _coordinated(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Names listed with one the model found ("Veress, Baker and Lund"): the same kind."""
    for _ in range(4):
        match = _AFTER.match(text, end)
        if match is None or match.group(1).lower() in NOT_NAMES:
            break
        yield match.start(1), match.end(1)
        end = match.end(1)
    for _ in range(4):
        match = _BEFORE.search(text, max(0, start - 40), start)
        if match is None or match.group(1).lower() in NOT_NAMES:
            break
        yield match.start(1), match.end(1)
        start = match.start(1)


_NAME_PARTICLES = frozenset({"of", "and", "the", "de", "la", "van", "von", "del", "der", "da", "di", "st"})
# The particles that can make a lower-case entity count (the others are common words, never names).
_NAME_PARTICLE = re.compile(
    r"(?<![^\W\d_])(?:" + "|".join(sorted(_NAME_PARTICLES - NOT_NAMES - EPONYMS)) + r")(?![^\W\d_])",
    re.IGNORECASE,
)
