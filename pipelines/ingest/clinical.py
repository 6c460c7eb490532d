"""Clinical sources: plain-text notes, JSONL/JSON and CSV notes, FHIR R4 bundles and NDJSON exports.

Notes must be UTF-8 (`not_utf8` otherwise: guessing a charset for clinical text risks silently
garbling it). FHIR is rendered by `fhir.render_patient`: clinical content plus age and sex only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest import fhir
from medcurate.pipelines.ingest.common import (
    Item,
    Rejected,
    SkipFn,
    Source,
    bounded_lines,
    dead_letter,
    make_sample,
    parse_json,
)
from medcurate.schemas.sample import Modality, SourceKind

# A UTF-8 character is at most 4 bytes: a file longer than this cannot fit `max_text_chars`.
_BYTES_PER_CHAR = 4


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejected("not_utf8", error) from None


def _check_text(text: str, config: IngestConfig) -> str:
    if "\x00" in text:
        raise Rejected("unsupported_type")
    text = text.strip()
    if not text:
        raise Rejected("no_text")
    if len(text) > config.max_text_chars:
        raise Rejected("too_large")
    return text


def note_sample(uri: str, record: int | None, text: str, metadata: dict[str, str]) -> dict[str, Any]:
    return make_sample(
        uri,
        record,
        source_kind=SourceKind.CLINICAL.value,
        modality=Modality.TEXT.value,
        mime_type="text/plain",
        text=text,
        metadata=metadata,
    )


def read_text_note(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    limit = min(config.max_file_bytes, config.max_text_chars * _BYTES_PER_CHAR)
    text = _check_text(_decode(source.read_all(limit)), config)
    yield note_sample(source.uri, None, text, {})


def _note_from_record(row: dict[str, Any], config: IngestConfig) -> tuple[str, dict[str, str]]:
    """The text of a JSON/CSV note record and its allow-listed metadata (nothing else is kept)."""
    field = next((name for name in config.text_fields if isinstance(row.get(name), str)), None)
    if field is None:
        raise Rejected("missing_text")
    metadata = {
        name: str(row[name])
        for name in config.metadata_fields
        if row.get(name) not in (None, "") and name != field
    }
    return _check_text(row[field], config), metadata


def _records(uri: str, rows: Iterable[tuple[int, Any]], config: IngestConfig) -> Iterator[Item]:
    for number, row in rows:
        try:
            if isinstance(row, Rejected):
                raise row
            if not isinstance(row, dict):
                raise Rejected("malformed_record")
            text, metadata = _note_from_record(row, config)
            yield note_sample(uri, number, text, metadata)
        except Rejected as rejected:
            yield dead_letter(uri, number, rejected.reason, rejected)


def _json_lines(source: Source, config: IngestConfig) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value or Rejected) for every non-blank line, streamed."""
    with source.open() as stream:
        for number, line in enumerate(bounded_lines(stream, config.max_record_bytes)):
            if line is None:
                yield number, Rejected("too_large")
                continue
            if not line.strip():
                continue
            try:
                yield number, parse_json(line, config.max_json_depth, "malformed_record")
            except Rejected as rejected:
                yield number, rejected


def read_jsonl_notes(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    yield from _records(source.uri, _json_lines(source, config), config)


def read_json_notes(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """A JSON document: one note object, or an array of them."""
    value = parse_json(source.read_all(config.max_file_bytes), config.max_json_depth)
    if isinstance(value, list):
        yield from _records(source.uri, enumerate(value), config)
    else:
        yield from _records(source.uri, [(None, value)], config)  # type: ignore[list-item]


# Stands in for a line longer than `max_record_bytes`, which is skipped unread.
_TOO_LONG = "\ue000too_large"


def _csv_lines(source: Source, config: IngestConfig) -> Iterator[str]:
    """Decoded lines for the csv module, none longer than `max_record_bytes` (bounded memory)."""
    with source.open() as stream:
        for number, line in enumerate(bounded_lines(stream, config.max_record_bytes)):
            if line is None:
                yield _TOO_LONG + "\n"
                continue
            try:
                yield line.decode("utf-8-sig" if number == 0 else "utf-8")
            except UnicodeDecodeError as error:
                raise Rejected("not_utf8", error) from None


def read_csv_notes(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """CSV (or TSV) with a header row; the note is the first column named in `text_fields`."""
    csv.field_size_limit(config.max_record_bytes)
    reader = csv.reader(_csv_lines(source, config), delimiter="\t" if source.extension == ".tsv" else ",")
    header: list[str] | None = None
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except Rejected as rejected:
            yield dead_letter(source.uri, number, rejected.reason, rejected)
            return
        except csv.Error as error:
            # The reader cannot resynchronise after a broken row: stop the file here.
            yield dead_letter(source.uri, number, "malformed_record", error)
            return
        if header is None:
            if not set(values) & set(config.text_fields):
                raise Rejected("missing_text")  # a table of something else: one dead letter, not one a row
            header = values
            continue
        if not values:
            continue
        if values[0].startswith(_TOO_LONG):
            yield dead_letter(source.uri, number, "too_large")
        else:
            yield from _records(source.uri, [(number, dict(zip(header, values, strict=False)))], config)
        number += 1


def _check_fhir(resources: list[dict[str, Any]]) -> None:
    """The first invalid resource rejects the document: it would be rendered wrong (a sex of
    `['female']`, an age from a birth date in the year 9999)."""
    for resource in resources:
        reason = fhir.check_resource(resource)
        if reason:
            raise Rejected(reason)


def _fhir_samples(uri: str, resources: list[dict[str, Any]], record_base: int | None) -> Iterator[Item]:
    _check_fhir(resources)
    documents = fhir.render_patients(resources)
    if not documents:
        raise Rejected("malformed_fhir")
    for index, (text, metadata) in enumerate(documents):
        if len(documents) == 1:
            record: int | str | None = record_base
        else:
            record = index if record_base is None else f"{record_base}.{index}"
        yield note_sample(uri, record, text, metadata)


def read_fhir_json(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    value = parse_json(source.read_all(config.max_file_bytes), config.max_json_depth, "malformed_fhir")
    yield from _fhir_samples(source.uri, fhir.resources_of(value), None)


def read_fhir_ndjson(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """Bulk-export NDJSON: a bundle per line is a document per line; loose resources are grouped
    by patient at the end of the file (bounded by `max_file_bytes` in all)."""
    loose: list[dict[str, Any]] = []
    held = 0
    for number, value in _json_lines(source, config):
        if isinstance(value, Rejected):
            keep = {"too_large", "json_too_deep", "not_utf8"}
            reason = value.reason if value.reason in keep else "malformed_fhir"
            yield dead_letter(source.uri, number, reason, value)
        elif isinstance(value, dict) and value.get("resourceType") == "Bundle":
            try:
                yield from _fhir_samples(source.uri, fhir.resources_of(value), number)
            except Rejected as rejected:
                yield dead_letter(source.uri, number, rejected.reason, rejected)
        elif isinstance(value, dict) and isinstance(value.get("resourceType"), str):
            reason = fhir.check_resource(value)
            if reason:
                yield dead_letter(source.uri, number, reason)
                continue
            held += len(json.dumps(value))
            if held > config.max_file_bytes:
                raise Rejected("too_large")
            loose.append(value)
        else:
            yield dead_letter(source.uri, number, "malformed_fhir")
    if loose:
        yield from _fhir_samples(source.uri, loose, None)
