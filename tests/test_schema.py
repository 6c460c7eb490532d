import pyarrow as pa
import pytest

from medcurate.schemas.events import DeadLetter, count_key
from medcurate.schemas.sample import SAMPLE_SCHEMA, new_sample, sample_id, samples_to_table, table_to_samples


def test_new_sample_fills_every_field_and_round_trips_through_arrow():
    sample = new_sample(
        source_kind="clinical",
        modality="text",
        source_uri="file:///notes/a.txt",
        text="[PERSON] was seen today.",
        metadata={"format": "txt"},
        redactions=[{"start": 0, "end": 8, "type": "PERSON", "score": 0.9}],
    )
    assert set(sample) == set(SAMPLE_SCHEMA.names)
    assert sample["id"] == sample_id("file:///notes/a.txt")
    table = samples_to_table([sample])
    assert table.schema.equals(SAMPLE_SCHEMA, check_metadata=True)
    back = table_to_samples(table)[0]
    assert back["metadata"] == {"format": "txt"}
    assert back["redactions"][0]["type"] == "PERSON"


def test_sample_ids_are_stable_and_distinct_per_record():
    assert sample_id("a.warc", 1) == sample_id("a.warc", 1)
    assert sample_id("a.warc", 1) != sample_id("a.warc", 2)


def test_unknown_or_missing_fields_are_errors():
    with pytest.raises(KeyError, match="not sample fields"):
        new_sample(source_kind="web", modality="text", source_uri="x", body="typo")
    with pytest.raises(KeyError, match="missing required"):
        new_sample(source_kind="web", source_uri="x")


def test_wrong_types_fail_at_arrow_conversion():
    sample = new_sample(source_kind="web", modality="text", source_uri="x", image_width="wide")
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        samples_to_table([sample])


def test_dead_letters_keep_only_the_exception_class():
    try:
        raise UnicodeDecodeError("utf-8", b"Jane Roe \xff", 9, 10, "invalid start byte")
    except UnicodeDecodeError as error:
        letter = DeadLetter.from_exception("ingest", "not_utf8", "notes/a.txt", error)
    assert letter.error_type == "UnicodeDecodeError"
    assert "Jane" not in str(letter.to_dict())
    assert count_key(letter) == "ingest/not_utf8"
