"""Site dictionaries: learning a site's own names, the matching policy, the artifact, `--site`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medcurate.annotators.missed import MISSED_PHI_FILE, missed_phi_flags, write_missed_phi
from medcurate.cli import CliError
from medcurate.privacy import cli as deid_cli
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.site import (
    ENTRIES_FILE,
    METADATA_FILE,
    SiteDictionary,
    SiteDictionaryError,
    entity_type,
)
from medcurate.privacy.text import TextDeidentifier

# Invented notes of an invented site: staff, a ward, a clinic and a town.
NOTES = [
    (
        "Seen by Dr. Rosa Hall on the Quillfeather ward. Transferred from Brackenmoor General on 3/14. "
        "Wife Odile called 555-201-3344.",
        [
            ("Rosa Hall", "HCPName"),
            ("Quillfeather", "Location"),
            ("Brackenmoor General", "Location"),
            ("3/14", "Date"),
            ("Odile", "RelativeProxyName"),
            ("555-201-3344", "Phone"),
        ],
    ),
    (
        "PT RETURNED FROM BRACKENMOOR GENERAL. DR. ZEVALLOS AWARE. WALKED IN THE HALL AT 2200.",
        [("BRACKENMOOR GENERAL", "Location"), ("ZEVALLOS", "HCPName")],
    ),
    (
        "Follow up at Tinderwick Clinic in Marrowdale with Dr. Zevallos, March 2031.",
        [
            ("Tinderwick Clinic", "Location"),
            ("Marrowdale", "Location"),
            ("Zevallos", "HCPName"),
            ("March 2031", "Date"),
        ],
    ),
]


def gold(text: str, phrases: list[tuple[str, str]]) -> dict:
    spans, cursor = [], 0
    for phrase, label in phrases:
        start = text.index(phrase, cursor)
        spans.append({"start": start, "end": start + len(phrase), "type": label})
        cursor = start + len(phrase)
    return {"text": text, "spans": spans}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return [gold(text, phrases) for text, phrases in NOTES]


@pytest.fixture(scope="module")
def site(docs: list[dict]) -> SiteDictionary:
    return SiteDictionary.learn(docs, name="brackenmoor")


def found(site: SiteDictionary, text: str) -> list[str]:
    return [text[s.start : s.end] for s in site.find(text)]


def test_learns_names_and_their_words_not_dates_phones_or_ordinary_words(site: SiteDictionary) -> None:
    phrases = set(site.entries)
    assert {"rosa hall", "rosa", "hall", "quillfeather", "brackenmoor general", "brackenmoor"} <= phrases
    assert {"zevallos", "tinderwick clinic", "tinderwick", "marrowdale", "odile"} <= phrases
    # Dates, phones and words that are not names of this site are never entries.
    assert not phrases & {"march", "3/14", "clinic", "general", "the", "ward", "dr"}
    assert not any(any(c.isdigit() for c in p) for p in phrases)
    assert site.entries["zevallos"].type == "PERSON" and site.entries["zevallos"].count == 2
    assert site.entries["marrowdale"].type == "LOCATION"
    assert site.entries["zevallos"].before == {"dr": 2}


def test_plain_names_match_case_blind_anywhere_as_whole_words(site: SiteDictionary) -> None:
    text = "Discussed with ZEVALLOS; see zevallos note. Zevallosian is not a name here."
    assert found(site, text) == ["ZEVALLOS", "zevallos"]
    spans = site.find("Back from Brackenmoor  General today.")
    assert [(s.type, s.source) for s in spans] == [("LOCATION", "site:brackenmoor")]
    # A learned phrase wins over its words, with the same joiners the notes use.
    assert found(site, "seen at BRACKENMOOR GENERAL, marrowdale") == ["BRACKENMOOR GENERAL", "marrowdale"]


def test_english_words_need_their_learned_context_or_capitals(site: SiteDictionary) -> None:
    hall = site.entries["hall"]
    assert hall.guarded and not site.entries["zevallos"].guarded
    assert found(site, "Asked Dr. Hall to review.") == ["Hall"]  # learned neighbour "dr"
    assert found(site, "DR HALL AWARE") == ["HALL"]
    assert found(site, "DOWN THE HALL AGAIN") == []  # upper case without the context: the word
    assert found(site, "the hall was quiet") == []  # lower case in mixed-case text
    assert found(site, "The plan was agreed with Hall yesterday.") == ["Hall"]  # capitalised mid-sentence
    assert found(site, "Hall passes were issued.") == []  # capitals at a sentence start say nothing


def test_a_word_the_site_also_writes_as_a_plain_word_needs_context(site: SiteDictionary) -> None:
    # "HALL" in note 2 ("IN THE HALL") is not PHI: the site uses it as an ordinary word too.
    assert site.entries["hall"].plain_count == 1
    assert site.entries["zevallos"].plain_count == 0


def test_labels_map_to_entity_types() -> None:
    assert entity_type("HCPName") == entity_type("PATIENT") == entity_type("RelativeProxyName") == "PERSON"
    assert entity_type("GEOGRAPHIC_LOCATION") == entity_type("STREET_ADDRESS") == "LOCATION"
    assert entity_type("HOSPITAL") == "FACILITY" and entity_type("ORGANIZATION") == "ORGANIZATION"
    for label in ("Date", "DateYear", "DATE_TIME", "Age", "PHONE_NUMBER", "EMAIL_ADDRESS", "IDNUM", "ID"):
        assert entity_type(label) is None, label
    assert entity_type(None) == entity_type("Other") == "DENY_LIST"


def test_save_load_round_trip_and_versions(site: SiteDictionary, docs: list[dict], tmp_path: Path) -> None:
    folder = tmp_path / "site"
    metadata = site.save(folder)
    assert metadata["version"] == 1 and metadata["name"] == "brackenmoor"
    assert metadata["counts"]["entries"] == len(site.entries)
    assert metadata["training_documents"] == 3 and len(metadata["training_sha256"]) == 64
    assert set(metadata) >= {"created_at", "tool_version", "content_sha256", "format_version"}
    loaded = SiteDictionary.load(folder)
    text = "ZEVALLOS and Dr. Hall at Tinderwick Clinic; the hall was quiet."
    assert loaded.find(text) == site.find(text) and len(loaded.find(text)) == 3
    assert loaded.describe()["content_sha256"] == metadata["content_sha256"]
    # Learning again from the same notes: same content, next version.
    again = SiteDictionary.learn(docs, name="brackenmoor").save(folder)
    assert again["version"] == 2 and again["content_sha256"] == metadata["content_sha256"]
    assert again["training_sha256"] == metadata["training_sha256"]
    changed = SiteDictionary.learn(docs[:2], name="brackenmoor").save(tmp_path / "other")
    assert changed["training_sha256"] != metadata["training_sha256"]


def test_load_refuses_altered_or_foreign_folders(site: SiteDictionary, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    site.save(folder)
    with pytest.raises(SiteDictionaryError, match="not a site dictionary"):
        SiteDictionary.load(tmp_path / "missing")
    entries = folder / ENTRIES_FILE
    body = entries.read_text()
    entries.write_text(body.replace('"zevallos"', '"zevallas"'))
    with pytest.raises(SiteDictionaryError, match="content_sha256"):
        SiteDictionary.load(folder)
    entries.write_text(body)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, "format_version": 99}))
    with pytest.raises(SiteDictionaryError, match="format version 99"):
        SiteDictionary.load(folder)
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, "format": "something else"}))
    with pytest.raises(SiteDictionaryError, match="not a medcurate-site-dictionary"):
        SiteDictionary.load(folder)


def test_merge_adds_counts_and_contexts(docs: list[dict]) -> None:
    first = SiteDictionary.learn(docs[:2], name="a")
    second = SiteDictionary.learn(docs[2:], name="b")
    merged = first.merge(second)
    assert merged.name == "a" and merged.entries["zevallos"].count == 2
    assert set(merged.entries) == set(SiteDictionary.learn(docs, name="c").entries)


def test_missed_phi_flags_become_learnable_snippets(tmp_path: Path) -> None:
    text = "Plan discussed with <PERSON>; Nurse Vantongeren will call the family back on Thursday afternoon."
    start = text.index("Vantongeren")
    task = {"id": 4, "data": {"sample_id": "s-1", "text": text}}
    annotation = {
        "result": [
            {"from_name": "verdict", "value": {"choices": ["accept"]}},
            {"from_name": "phi", "value": {"start": start, "end": start + 11, "labels": ["PERSON"]}},
        ]
    }
    (flag,) = missed_phi_flags(task, annotation, reviewer_id=9)
    snippet, span = flag["text"], flag["spans"][0]
    assert snippet[span["start"] : span["end"]] == "Vantongeren" and span["type"] == "PERSON"
    assert len(snippet) < len(text) and "Nurse" in snippet and flag["reviewer_id"] == 9
    write_missed_phi([flag], tmp_path)
    site = SiteDictionary.learn([flag], name="flags")
    assert found(site, "VANTONGEREN AT BEDSIDE") == ["VANTONGEREN"]
    assert (tmp_path / MISSED_PHI_FILE).is_file()


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, [])


@pytest.mark.slow
def test_cli_learn_site_then_deid_text_with_site(docs: list[dict], tmp_path: Path) -> None:
    notes = tmp_path / "gold.jsonl"
    notes.write_text("".join(json.dumps(d) + "\n" for d in docs))
    flags = tmp_path / "reviews"
    flags.mkdir()
    snippet = "seen by Nurse Oyelaran today"
    start = snippet.index("Oyelaran")
    write_missed_phi(
        [{"text": snippet, "spans": [{"start": start, "end": start + 8, "type": "PERSON"}]}], flags
    )
    site_dir = tmp_path / "site"
    argv = ["deid", "learn-site", "--gold", str(notes), "--reviews", str(flags), "--output", str(site_dir)]
    assert _run([*argv, "--name", "brackenmoor"]) == 0
    assert json.loads((site_dir / METADATA_FILE).read_text())["name"] == "brackenmoor"

    text = "QUILLFEATHER RN OYELARAN REPORTS PT RESTING. PLAN PER TINDERWICK CLINIC."
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "n1", "text": text}) + "\n")
    plain, with_site = tmp_path / "plain.jsonl", tmp_path / "site.jsonl"
    assert _run(["deid", "text", "--input", str(source), "--output", str(plain)]) == 0
    assert (
        _run(["deid", "text", "--site", str(site_dir), "--input", str(source), "--output", str(with_site)])
        == 0
    )
    (row,) = [json.loads(line) for line in with_site.read_text().splitlines()]
    assert set(row) == set(json.loads(plain.read_text())) == {"id", "text", "spans", "confidence"}
    by_site = {
        text[s["start"] : s["end"]] for s in row["spans"] if "site:brackenmoor" in s["source"].split("+")
    }
    # The kind of place stays outside the name in a clinical record ("TINDERWICK", not "CLINIC").
    assert {"QUILLFEATHER", "OYELARAN", "TINDERWICK"} <= by_site
    for name in ("QUILLFEATHER", "OYELARAN", "TINDERWICK"):
        assert name not in row["text"], name
    assert not any("site:" in s["source"] for s in json.loads(plain.read_text())["spans"])
    assert "RESTING" in row["text"] and "CLINIC" in row["text"]

    (site_dir / ENTRIES_FILE).write_text("")
    with pytest.raises(CliError, match="content_sha256"):
        _run(["deid", "text", "--site", str(site_dir), "--input", str(source), "--output", str(plain)])
    with pytest.raises(CliError, match="--gold"):
        _run(["deid", "learn-site", "--output", str(site_dir)])


@pytest.mark.slow
def test_deidentifier_takes_a_dictionary_or_the_config_key(site: SiteDictionary, tmp_path: Path) -> None:
    text = "Marrowdale resident, seen by Odile; the hall is quiet."
    by_object = TextDeidentifier(DeidConfig(tagger="off"), site=site).deidentify_batch([text])[0]
    site.save(tmp_path / "site")
    by_key = TextDeidentifier(DeidConfig(site=str(tmp_path / "site"), tagger="off")).deidentify_batch([text])[
        0
    ]
    assert by_object.text == by_key.text and by_object.spans == by_key.spans
    (place,) = [s for s in by_key.spans if text[s.start : s.end] == "Marrowdale"]
    assert "site:brackenmoor" in place.source.split("+")
    assert "Marrowdale" not in by_key.text and "hall is quiet" in by_key.text
    # allow_list still wins over the dictionary.
    allowed = TextDeidentifier(DeidConfig(allow_list=["Marrowdale"]), site=site).deidentify_batch([text])[0]
    assert "Marrowdale resident" in allowed.text


@pytest.mark.slow
def test_a_run_records_the_dictionary_in_its_manifest_without_its_entries(
    site: SiteDictionary, tmp_path: Path
) -> None:
    from medcurate.config import load_config
    from medcurate.pipelines.curate import run

    site_dir = tmp_path / "site"
    metadata = site.save(site_dir)
    notes = tmp_path / "notes.jsonl"
    note = "Reviewed in the Quillfeather unit with Dr. Zevallos; discharged home with follow up arranged."
    notes.write_text(json.dumps({"id": "n1", "text": note}) + "\n")
    overrides = [
        f"ingest.inputs=['{notes}']",
        f"publish.output_dir={tmp_path / 'out'}",
        f"deid.site={site_dir}",
    ]
    result = run(load_config(None, overrides))
    recorded = result.manifest.site_dictionary
    assert recorded is not None and recorded["name"] == "brackenmoor" and recorded["version"] == 1
    assert recorded["content_sha256"] == metadata["content_sha256"]
    manifest_text = (Path(result.version_dir) / "manifest.json").read_text()
    assert metadata["content_sha256"] in manifest_text
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    shards = [p for p in written if p.suffix == ".parquet"]
    assert shards
    published = "".join(json.dumps(pq.read_table(p).to_pylist(), default=str) for p in shards)
    published += "".join(p.read_text(errors="replace") for p in written if p.suffix != ".parquet")
    assert "Quillfeather" not in published and "Zevallos" not in published
    assert "marrowdale" not in published.lower()  # no entry of the dictionary leaks into the output

    (site_dir / ENTRIES_FILE).write_text("")
    with pytest.raises(SiteDictionaryError, match="content_sha256"):
        run(load_config(None, overrides))


@pytest.mark.slow
def test_physicians_missed_phi_flags_from_label_studio_feed_the_dictionary(ls_config, tmp_path: Path) -> None:
    """push -> a physician flags a surviving name -> `review pull` writes it to missed_phi.jsonl ->
    `deid learn-site --reviews` learns it, against the real server."""
    from medcurate.annotators.config import ReviewConfig
    from medcurate.annotators.projects import TEXT, connect, ensure_project
    from medcurate.annotators.pull import pull_reviews
    from medcurate.annotators.push import push_samples
    from medcurate.annotators.routing import route_sample
    from medcurate.schemas.sample import new_sample

    note = "Seen on the ward by Dr Quennell for chest pain; <PERSON> reports dyspnea. Follow up in clinic."
    config = ReviewConfig(
        label_studio=ls_config,
        text_project="site text",
        image_project="site image",
        outbox=str(tmp_path / "outbox.jsonl"),
        reviews_dir=str(tmp_path / "reviews"),
        backoff_s=0.2,
    )
    sample = new_sample(
        source_kind="clinical",
        modality="text",
        source_uri="fhir://site/0",
        text=note,
        language="en",
        quality_score=0.5,
        deid_confidence=0.3,
        redactions=[{"start": 48, "end": 56, "type": "PERSON", "score": 0.85}],
    )
    assert push_samples([route_sample(sample, ReviewConfig(audit_fraction=0))], config).sent == 1
    client = connect(config)
    (task,) = client.tasks.list(project=ensure_project(client, config, TEXT), fields="all", page_size=10)
    start = note.index("Quennell")
    flag = {"start": start, "end": start + 8, "text": "Quennell", "labels": ["PERSON"]}
    result = [
        {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": ["accept"]}},
        {"from_name": "phi", "to_name": "text", "type": "labels", "value": flag},
    ]
    client.annotations.create(task.id, result=result, completed_by=client.users.whoami().id)

    pulled = pull_reviews(config)
    assert pulled.missed_phi == 1
    (row,) = [json.loads(line) for line in (tmp_path / "reviews" / MISSED_PHI_FILE).read_text().splitlines()]
    assert row["sample_id"] == sample["id"] and "in clinic" not in row["text"]  # a snippet, not the note
    site_dir = tmp_path / "site"
    assert (
        _run(["deid", "learn-site", "--reviews", str(tmp_path / "reviews"), "--output", str(site_dir)]) == 0
    )
    site = SiteDictionary.load(site_dir)
    assert site.entries["quennell"].type == "PERSON"
    assert found(site, "DR QUENNELL AWARE OF LABS") == ["QUENNELL"]
