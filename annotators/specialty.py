"""Predicted specialty of a sample's text, so review push can fill a cardiologist's queue with cardiology.

A small keyword lexicon per specialty of the labeling configs (`projects.SPECIALTIES`): the score
of a specialty is the number of its distinct terms found in the text (case-insensitive, at word
starts, so "cardiomyopathy" matches `cardio`). The top specialty wins when it has at least
`MIN_TERMS` terms and no other specialty ties it; otherwise the text is `UNKNOWN` and push falls
back to spreading it over all reviewers. Deterministic and explainable (no model to train): the
terms are English clinical vocabulary; text in other languages is mostly `UNKNOWN`.
`general_medicine` and `other` have no lexicon: they are never predicted, only chosen by reviewers.
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"
MIN_TERMS = 2  # one stray word ("heart", "seizure") is not enough to route a whole sample

# Specialty code -> term prefixes. Prefixes match at a word start; keep them specific to the field.
LEXICON: dict[str, tuple[str, ...]] = {
    "cardiology": (
        "cardi",
        "myocardi",
        "coronary",
        "angina",
        "arrhythm",
        "atrial fibrillation",
        "tachycard",
        "bradycard",
        "echocardiogra",
        "ejection fraction",
        "troponin",
        "stent",
        "angioplast",
        "heart failure",
        "valve",
        "aortic",
        "mitral",
        "ecg",
        "ekg",
        "pericard",
        "hypertensi",
    ),
    "oncology": (
        "cancer",
        "tumo",
        "carcinom",
        "lymphom",
        "leukem",
        "leukaem",
        "melanom",
        "sarcom",
        "metasta",
        "chemotherap",
        "radiotherap",
        "oncolog",
        "malignan",
        "neoplas",
        "biopsy",
        "staging",
    ),
    "neurology": (
        "neurolog",
        "seizure",
        "epilep",
        "stroke",
        "migraine",
        "parkinson",
        "multiple sclerosis",
        "dementia",
        "alzheimer",
        "neuropath",
        "aphasia",
        "hemipar",
        "cerebr",
        "encephal",
    ),
    "pediatrics": (
        "paediatr",
        "pediatr",
        "infant",
        "newborn",
        "neonat",
        "toddler",
        "child",
        "vaccination schedule",
        "growth chart",
        "birth weight",
        "breastfe",
        "school-age",
    ),
    "psychiatry": (
        "psychiatr",
        "depressi",
        "anxiety",
        "schizophren",
        "bipolar",
        "psychos",
        "psychotic",
        "suicid",
        "antidepress",
        "antipsychot",
        "ptsd",
        "obsessive",
        "mood disorder",
        "self-harm",
    ),
    "radiology": (
        "radiolog",
        "x-ray",
        "radiograph",
        "ct scan",
        "computed tomograph",
        "mri",
        "magnetic resonance",
        "ultrasound",
        "sonograph",
        "mammogra",
        "contrast",
        "opacit",
        "impression:",
    ),
    "infectious_disease": (
        "infect",
        "sepsis",
        "septic",
        "antibiot",
        "bacter",
        "viral",
        "virus",
        "hiv",
        "tuberculos",
        "pneumonia",
        "malaria",
        "fungal",
        "culture",
        "antimicrob",
        "fever",
    ),
    "endocrinology": (
        "diabet",
        "insulin",
        "thyroid",
        "glyc",
        "hba1c",
        "endocrin",
        "hormone",
        "adrenal",
        "pituitar",
        "cortisol",
        "metformin",
        "hypoglyc",
        "hyperglyc",
        "osteopor",
    ),
}

_PATTERNS = {
    code: [re.compile(r"(?<![a-z0-9])" + re.escape(term)) for term in terms]
    for code, terms in LEXICON.items()
}


def specialty_scores(text: str) -> dict[str, int]:
    """How many distinct terms of each specialty occur in `text`."""
    lowered = (text or "").lower()
    return {code: sum(1 for p in patterns if p.search(lowered)) for code, patterns in _PATTERNS.items()}


def predict_specialty(text: str) -> str:
    """The specialty code whose terms dominate `text`, else `UNKNOWN` (too few terms or a tie)."""
    ranked = sorted(specialty_scores(text).items(), key=lambda item: item[1], reverse=True)
    (best, score), (_, runner_up) = ranked[0], ranked[1]
    return best if score >= MIN_TERMS and score > runner_up else UNKNOWN
