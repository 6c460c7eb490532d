"""The learned PHI tagger: training data, the artifact, the shipped model, and its place in `deid text`."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pycrfsuite
import pytest

from medcurate.cli import CliError
from medcurate.privacy import cli as deid_cli
from medcurate.privacy.augment import (
    GoldDoc,
    Surrogates,
    fold_of,
    generated,
    gold_doc,
    phi_class,
    read_gold,
    swapped,
)
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.tagger import (
    DEFAULT_MODEL,
    FEATURE_VERSION,
    PhiTagger,
    TaggerConfig,
    TaggerError,
    token_labels,
    tokens,
    train,
)
from medcurate.privacy.text import TextDeidentifier
from medcurate.privacy.vocab import is_english

SMALL = TaggerConfig(copies=1, generated=400, max_iterations=40)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, [])


def _invented_gold() -> list[GoldDoc]:
    return list(generated(300, random.Random(5)))


def test_gold_layouts_and_classes(tmp_path: Path) -> None:
    lines = tmp_path / "notes.jsonl"
    lines.write_text(
        json.dumps(
            {
                "patient_id": 4,
                "text": "Wife Orlaith called.",
                "spans": [{"start": 5, "end": 12, "type": "NAME"}],
            }
        )
        + "\n"
    )
    presidio = tmp_path / "synth.json"
    presidio.write_text(
        json.dumps(
            [
                {
                    "full_text": "Call 555-0100",
                    "template_id": 9,
                    "spans": [{"start_position": 5, "end_position": 13, "entity_type": "PHONE_NUMBER"}],
                }
            ]
        )
    )
    (note,) = read_gold(lines)
    (sample,) = read_gold(presidio)
    assert note.spans == ((5, 12, "NAME"),) and note.group == "4"
    assert sample.spans == ((5, 13, "CONTACT"),) and sample.group == "9"
    assert phi_class("HCPName") == "NAME" and phi_class("never-seen-label") == "OTHER"
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"broken\.jsonl:1"):
        read_gold(broken)


def test_surrogate_swap_keeps_offsets_and_context() -> None:
    doc = gold_doc(
        {
            "text": "SEEN BY DR. QUILLAN ON 3/14, WIFE AT BEDSIDE.",
            "spans": [{"start": 12, "end": 19, "type": "HCPName"}, {"start": 23, "end": 27, "type": "Date"}],
        }
    )
    copy = swapped(doc, random.Random(1))
    assert copy.text.startswith("SEEN BY DR. ") and copy.text.endswith(", WIFE AT BEDSIDE.")
    name, date = (copy.text[a:b] for a, b, _ in copy.spans)
    assert name.isupper() and name != "QUILLAN"
    assert re.fullmatch(r"\d{1,2}/\d{1,2}", date)
    month, day = map(int, date.split("/"))
    assert 1 <= month <= 12 and 1 <= day <= 28  # a real date, not any fraction


def test_token_labels_follow_gold() -> None:
    doc = GoldDoc("Son Tavish aware", ((4, 10, "NAME"),))
    assert token_labels(doc, tokens(doc.text)) == ["O", "NAME", "O"]


def test_folds_keep_groups_whole_and_are_stable() -> None:
    assert fold_of("patient-17", 5) == fold_of("patient-17", 5)
    assert {fold_of(f"patient-{i}", 5) for i in range(200)} == set(range(5))


@pytest.mark.slow
def test_train_writes_a_versioned_artifact_and_is_deterministic(tmp_path: Path) -> None:
    docs = _invented_gold()
    first = train(docs, tmp_path / "a", SMALL, version="0007", sources=["invented.jsonl"])
    second = train(docs, tmp_path / "b", SMALL)
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["version"] == "0007" and meta["feature_version"] == FEATURE_VERSION
    assert len(meta["training_data_sha256"]) == 64 and meta["config"]["max_iterations"] == 40
    assert first.metadata["model_sha256"] == second.metadata["model_sha256"]
    # Learned from context: a name made of syllables in no list, in a sentence it never saw.
    text = "Pt seen today. Husband Zorvakiel at bedside, updated on plan."
    found = {text[s.start : s.end] for s in first.find(text)}
    assert any("Zorvakiel" in value for value in found)


def test_artifact_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(TaggerError, match="not a PHI tagger folder"):
        PhiTagger.load(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"feature_version": FEATURE_VERSION + 1}))
    with pytest.raises(TaggerError, match="retrain"):
        PhiTagger.load(tmp_path)


def test_shipped_model_holds_no_identifier() -> None:
    """Token identities are stored only for vocabulary: no name, town or ID of the training notes."""
    tagger = PhiTagger.load(DEFAULT_MODEL)
    assert tagger.metadata["training_data_sha256"] and tagger.metadata["metrics"]
    model = pycrfsuite.Tagger()
    model.open(str(DEFAULT_MODEL / "model.crfsuite"))
    attributes = {attribute for attribute, _ in model.info().state_features}
    identities = {a.split("w=", 1)[1] for a in attributes if re.match(r"^-?\d?w=", a)}
    assert identities
    from medcurate.privacy.tagger import _CLINICAL

    for word in identities:
        assert (
            word.startswith("~")
            or len(word) <= 2
            or not word.isalnum()
            or is_english(word)
            or word in _CLINICAL
        ) or (word.isdigit() and len(word) <= 4), word


@pytest.fixture(scope="module")
def deidentifier() -> TextDeidentifier:
    return TextDeidentifier(DeidConfig())


def test_tagger_spans_name_their_source(deidentifier: TextDeidentifier) -> None:
    text = "Daughter Ysoldeva visited; pt calmer after she left."
    (result,) = deidentifier.deidentify_batch([text])
    assert "Ysoldeva" not in result.text
    assert any(
        part.startswith("tagger:phi-tagger") for span in result.spans for part in span.source.split("+")
    )
    assert deidentifier.artifacts()["deid_tagger"]["model_sha256"]


def test_invented_names_in_clinical_phrasings(deidentifier: TextDeidentifier) -> None:
    """Syllable names in no list, in phrasings the templates do not hold verbatim."""
    rng = random.Random(11)
    surrogates = Surrogates(rng)
    phrasings = (
        "Spoke with {n} (sister) about goals of care.",
        "{N} IS A 71 YO MAN ADMITTED WITH SOB.",
        "Sister-in-law {n} will bring his glasses tomorrow.",
        "PER {N}, PT FELL AT HOME LAST WEEK.",
    )
    leaked = total = 0
    texts, names = [], []
    for phrasing in phrasings:
        for _ in range(10):
            name = surrogates.first() if rng.random() < 0.5 else surrogates.last()
            texts.append(phrasing.replace("{n}", name).replace("{N}", name.upper()))
            names.append(name)
    for name, result in zip(names, deidentifier.deidentify_batch(texts), strict=True):
        total += 1
        leaked += name.lower() in result.text.lower()
    assert leaked / total <= 0.05


def test_tagger_off_and_unknown_folder(tmp_path: Path) -> None:
    off = TextDeidentifier(DeidConfig(tagger="off"))
    assert off.tagger is None and off.artifacts() == {}
    with pytest.raises(TaggerError):
        TextDeidentifier(DeidConfig(tagger=str(tmp_path)))


@pytest.mark.slow
def test_train_command_round_trip(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    with gold.open("w") as out:
        for doc in _invented_gold():
            spans = [{"start": a, "end": b, "type": t} for a, b, t in doc.spans]
            out.write(json.dumps({"patient_id": doc.group, "text": doc.text, "spans": spans}) + "\n")
    model = tmp_path / "model"
    argv = ["deid", "train", "--gold", str(gold), "--output", str(model), "--eval-folds", "3"]
    assert _run([*argv, "--max-iterations", "30", "--generated", "100", "--copies", "1"]) == 0
    meta = json.loads((model / "metadata.json").read_text())
    assert 0.5 < meta["metrics"]["char_recall"] <= 1 and meta["training_sources"] == ["gold.jsonl"]
    notes = tmp_path / "in.jsonl"
    notes.write_text(json.dumps({"id": 1, "text": "Wife Brennagh called at 0900."}) + "\n")
    out = tmp_path / "out.jsonl"
    assert (
        _run(["deid", "text", "--input", str(notes), "--output", str(out), "--set", f"deid.tagger={model}"])
        == 0
    )
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert "Brennagh" not in row["text"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": "no phi here", "spans": []}) + "\n")
    with pytest.raises(CliError, match="no PHI spans"):
        _run(["deid", "train", "--gold", str(empty), "--output", str(tmp_path / "m2")])


@pytest.mark.parametrize(
    ("text", "value", "entity", "kept"),
    [
        ("Her Quillane-Marsh score was 12.", "Quillane-Marsh", "PERSON", False),
        ("Quillane-Marsh visited today.", "Quillane-Marsh", "PERSON", True),
        ("Activity score XQ28 stable.", "XQ28", "ID", False),
        ("Chart XQ284417 reviewed.", "XQ284417", "ID", True),
        ("ZORVAKIEL TELLIAN\n4417291", "ZORVAKIEL TELLIAN", "ID", True),
        ("Seen last month for rash.", "last month", "DATE", False),
        ("Seen on March 3 for rash.", "March 3", "DATE", True),
        ("A 72 year old with rash.", "72", "AGE", False),
        ("A 93 year old with rash.", "93", "AGE", True),
    ],
)
def test_tagger_spans_follow_safe_harbor(text: str, value: str, entity: str, kept: bool) -> None:
    from medcurate.privacy.text import _plausible_tag

    start = text.index(value)
    assert _plausible_tag(text, start, start + len(value), entity) is kept


@pytest.mark.parametrize(
    ("text", "value", "word_like"),
    [
        ("Pain over the left graft site.\nSeen by Dr. Orvath.", "graft", True),
        ("SOCIAL: SEVERAL FAMILY MEMBERS AT BEDSIDE.", "SEVERAL", True),
        ("Pt restarted on furosem.\nFamily called by Orvath.", "furosem", True),
        ("Family meeting with Graft about goals.\nPt calm.", "Graft", False),
        ("Called June at home.\nPt calm.", "June", False),
        ("Seen by Ysoldeva Brannock today.", "Ysoldeva", False),
        ("Resp: cpap 12/6 overnight.", "12/6", True),
        ("Hx: MI in '88, CABG 1994.\nPt on asa, bp stable.", "88", False),
        ("Hx: MI in '88, CABG 1994.\nPt on asa, bp stable.", "1994", False),
        ("We moved here in 1994 and my knee still hurts.", "1994", True),
    ],
)
def test_tagger_only_spans_that_need_high_confidence(text: str, value: str, word_like: bool) -> None:
    from medcurate.privacy.text import _word_like

    start = text.index(value)
    assert _word_like(text, start, start + len(value)) is word_like


def test_repeated_names_skip_words_of_the_language() -> None:
    from medcurate.privacy.text import PhiSpan, repeated_names

    text = "Daughter Ysoldeva called.\nDaughter at bedside later; Ysoldeva will call again."
    first = text.index("Daughter Ysoldeva")
    found = repeated_names(text, [PhiSpan(first, first + len("Daughter Ysoldeva"), "PERSON", 0.9, "rule")])
    values = {text[s.start : s.end] for s in found}
    assert values == {"Ysoldeva"} and len(found) == 2


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("laboratory", True),
        ("transfer note", True),
        ("Kindred", False),
        ("baltimore", False),
        ("kowalski", False),
    ],
)
def test_lower_case_words_of_the_language_are_no_names(value: str, plain: bool) -> None:
    from medcurate.privacy.text import _plain_words

    text = f"Pt seen by Dr. Orvath.\nNoted: {value} today."
    start = text.index(value)
    assert _plain_words(text, start, start + len(value)) is plain


def test_spans_lose_relation_words_titles_and_edge_punctuation() -> None:
    note = (
        "Neuro: pt alert.\nSocial: Daughter Ysoldeva Brannock called from (410) 555-0187.\nSeen by Dr Orvath."
    )
    (result,) = TextDeidentifier(DeidConfig()).deidentify_batch([note])
    values = {note[s.start : s.end] for s in result.spans}
    assert {"Ysoldeva Brannock", "(410) 555-0187", "Orvath"} <= values
    assert "Daughter <PERSON>" in result.text and "Dr <PERSON>" in result.text
