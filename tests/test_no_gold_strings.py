"""No PHI string of the evaluation sets may appear anywhere in the repository.

Rules and tests written while looking at evaluation data tend to copy its names, towns and
hospitals; such a rule measures nothing on that data and leaks it into the code. The gold PHI
strings of ../shared/data are collected, and every git-tracked text file is searched for them
(case-insensitive, whole word). A gold string is searched when it has 5 or more characters and at
least one of its words is not an ordinary word: not English (`is_english`) and not in the
project's lists of general vocabulary (medical eponyms and terms such as "Foley" or "Framingham",
countries, nationalities, job titles), which come from general knowledge, not from a gold set. A
run of digits is no word, so dates, phones and identifiers of 5+ characters count; "Methodist
Hospital" does not, "Ravensworth Hospital" would. Multi-line strings (addresses) are searched line by line. Hits are
reported as file:line and the kind of the string (set and label), never the string itself.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from medcurate.privacy.vocab import COUNTRIES, EPONYMS, MEDICAL_TERMS, NATIONALITIES, OCCUPATIONS, is_english

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHI = DATA / "phi"
MIN_CHARS = 5
# General vocabulary that is no English word of WordNet; place and hospital lists are not in it.
_VOCABULARY = EPONYMS | MEDICAL_TERMS | COUNTRIES | NATIONALITIES | OCCUPATIONS
_WORD = re.compile(r"[^\W\d_]+|\d+")
_TOKEN = re.compile(r"\w+")
# DICOM attributes whose values are the patient's, staff's or site's (PS3.15 Table E.1-1 rows);
# VR PN (every person name) is added to these.
_DICOM_TAGS = (
    "PatientID",
    "OtherPatientIDs",
    "PatientAddress",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "AccessionNumber",
    "PatientBirthDate",
)


def _is_searched(value: str) -> bool:
    """5+ characters and a word that is no ordinary word (digit runs never are)."""
    if len(value) < MIN_CHARS:
        return False
    words = _WORD.findall(value)
    return any(word.isdigit() or not (is_english(word) or word.lower() in _VOCABULARY) for word in words)


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _raw_gold() -> list[tuple[str, str]]:
    """(value, kind) for every gold PHI value of the evaluation sets."""
    pairs: list[tuple[str, str]] = []
    for note in _jsonl(PHI / "physionet_deid" / "notes.jsonl"):
        text = note["text"]
        pairs += [(text[s["start"] : s["end"]], f"physionet:{s.get('type', '?')}") for s in note["spans"]]
    for query in _jsonl(PHI / "asq_phi" / "queries.jsonl"):
        text = query["text"]
        pairs += [(text[s["start"] : s["end"]], f"asq:{s.get('label', '?')}") for s in query["spans"]]
    for path in sorted((PHI / "presidio_research_synth").glob("*.json")):
        for sample in json.loads(path.read_text(encoding="utf-8")):
            pairs += [(s["entity_value"], f"presidio:{s['entity_type']}") for s in sample["spans"]]
    for bundle in _jsonl(PHI / "synthea_fhir" / "phi_gold.jsonl"):
        pairs += [(str(p["value"]), f"synthea:{p['type']}") for p in bundle["phi"]]
    pairs += _dicom_gold()
    return pairs


def _dicom_gold() -> list[tuple[str, str]]:
    import pydicom

    pairs: list[tuple[str, str]] = []
    for path in sorted((DATA / "images" / "deid_data_dicom").rglob("*.dcm")):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        for element in dataset.iterall():
            if element.VR == "PN" or element.keyword in _DICOM_TAGS:
                values = element.value if element.VM > 1 else [element.value]
                pairs += [(str(v), f"dicom:{element.keyword}") for v in values if v]
    return pairs


def gold_strings() -> dict[str, str]:
    """Lower-case searched gold string -> its kind."""
    gold: dict[str, str] = {}
    for value, kind in _raw_gold():
        for line in value.splitlines():
            # Matching starts and ends on a word character, so strip what is around the words.
            piece = re.sub(r"\s+", " ", line).strip(" \t,.;:()[]'\"-/")
            if _is_searched(piece):
                gold.setdefault(piece.lower(), kind)
    return gold


def _tracked_texts() -> list[tuple[str, str]]:
    names = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    texts = []
    for name in filter(None, names):
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
        if encoding == "utf-8" and b"\0" in data:
            continue  # binary
        try:
            texts.append((name, data.decode(encoding)))
        except UnicodeDecodeError:
            continue
    return texts


def find_gold(texts: list[tuple[str, str]], gold: dict[str, str]) -> list[str]:
    """'file:line kind' for each whole-word, case-insensitive occurrence of a gold string."""
    by_first: dict[str, list[str]] = defaultdict(list)
    for value in gold:
        first = _TOKEN.match(value)
        if first:
            by_first[first.group()].append(value)
    hits = []
    for name, text in texts:
        for number, line in enumerate(text.lower().splitlines(), 1):
            line = re.sub(r"\s+", " ", line)
            for token in _TOKEN.finditer(line):
                if token.start() and line[token.start() - 1].isalnum():
                    continue
                for value in by_first.get(token.group(), ()):
                    end = token.start() + len(value)
                    if line.startswith(value, token.start()) and not (
                        end < len(line) and line[end].isalnum()
                    ):
                        hits.append(f"{name}:{number} {gold[value]}")
    return hits


needs_data = pytest.mark.skipif(not PHI.is_dir(), reason="../shared/data (the evaluation sets) is absent")


def test_searcher_finds_whole_words_only() -> None:
    gold = {"ravensworth hospital": "test:LOCATION", "48213377": "test:ID"}
    texts = [
        ("a.txt", "seen at RAVENSWORTH  Hospital today"),
        ("b.txt", "xravensworth hospital; id 482133770; id 48213377."),
    ]
    assert find_gold(texts, gold) == ["a.txt:1 test:LOCATION", "b.txt:1 test:ID"]


def test_searched_strings_rule() -> None:
    assert _is_searched("Ravensworth Hospital")
    assert _is_searched("03/17/2021")
    assert not _is_searched("Methodist Hospital")
    assert not _is_searched("Quin")
    assert not _is_searched("Foley catheter")


@needs_data
def test_no_gold_phi_string_in_repository() -> None:
    gold = gold_strings()
    assert len(gold) > 1000, "too few gold strings collected: the data layout changed"
    hits = find_gold(_tracked_texts(), gold)
    assert not hits, "gold PHI strings of the evaluation sets in the repository:\n" + "\n".join(hits)
