"""FHIR R4 (and generic JSON) de-identification by field rules, with NER only for free text.

Structured PHI is found by where it sits, not by what it looks like: names, telecom, addresses
(with their geolocation extensions), identifiers and dates are rewritten by field; ids, references
and UIDs are remapped through a keyed hash so that the bundle still links up; only the remaining
strings (narratives, notes, descriptions, display texts) go through the text de-identifier, in one
batch per call. Keys of plain JSON that name PHI ("first_name", "phone", "dob") get the same rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.operators import pseudonym_id, pseudonym_uid, pseudonym_uuid, shift_days
from medcurate.privacy.text import TextDeidentifier

Json = Any

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
_DICOM_UID = re.compile(r"^(?:urn:oid:)?[0-2](?:\.\d+){3,}$")
# Values that are codes, enums or URLs of code systems: never personal, never worth NER.
_CODE_KEYS = frozenset(
    [
        "resourceType",
        "system",
        "code",
        "use",
        "status",
        "gender",
        "intent",
        "priority",
        "mode",
        "outcome",
        "currency",
        "unit",
        "method",
        "language",
        "contentType",
        "versionId",
        "profile",
        "valueCode",
        "periodUnit",
        "durationUnit",
        "type",
        "comparator",
        "severity",
        "criticality",
        "category",
        "kind",
        "purpose",
        "modality",
        "sopClass",
        "availability",
    ]
)
# Resource types whose `name` string names a person, a place or an organisation.
_NAMED_TYPES = frozenset(
    [
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
        "Person",
        "Organization",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Group",
        "InsurancePlan",
    ]
)
# Keys whose Reference points at a person or an organisation even when the target is unknown.
_PARTY_KEYS = frozenset(
    [
        "subject",
        "patient",
        "performer",
        "requester",
        "practitioner",
        "author",
        "individual",
        "provider",
        "organization",
        "serviceProvider",
        "managingOrganization",
        "generalPractitioner",
        "insurer",
        "payor",
        "assigner",
        "recorder",
        "asserter",
        "sender",
        "recipient",
        "participant",
        "actor",
        "informant",
        "source",
        "attester",
        "custodian",
        "enterer",
        "careTeam",
        "beneficiary",
        "policyHolder",
        "subscriber",
        "referral",
        "prescriber",
    ]
)
_MAX_CACHED = 200_000
_EMPTY_DIV = '<div xmlns="http://www.w3.org/1999/xhtml">removed</div>'
# Address parts Safe Harbor lets stay (a state is larger than any allowed geographic unit).
_ADDRESS_KEEP = frozenset({"use", "type", "state", "country"})
# Extensions whose value identifies a person or a place whatever its type.
_PHI_EXTENSIONS = ("mothersmaidenname", "birthplace", "geolocation", "nationality", "patient-religion")
# Keys of plain JSON (lower case, no separators) and the entity they hold.
_GENERIC_KEYS = {
    **dict.fromkeys(
        [
            "name",
            "fullname",
            "firstname",
            "lastname",
            "givenname",
            "familyname",
            "surname",
            "middlename",
            "maidenname",
            "patientname",
            "nickname",
        ],
        "PERSON",
    ),
    **dict.fromkeys(["phone", "telephone", "mobile", "cell", "fax", "pager", "phonenumber"], "PHONE_NUMBER"),
    **dict.fromkeys(["email", "emailaddress", "mail"], "EMAIL_ADDRESS"),
    **dict.fromkeys(["ssn", "socialsecuritynumber"], "US_SSN"),
    **dict.fromkeys(
        [
            "street",
            "streetaddress",
            "line",
            "city",
            "town",
            "zip",
            "zipcode",
            "postcode",
            "postalcode",
            "county",
            "district",
            "latitude",
            "longitude",
            "lat",
            "lon",
            "lng",
        ],
        "LOCATION",
    ),
    **dict.fromkeys(
        [
            "mrn",
            "medicalrecordnumber",
            "accountnumber",
            "patientid",
            "memberid",
            "policynumber",
            "licensenumber",
            "passport",
            "passportnumber",
            "driverslicense",
            "ip",
            "ipaddress",
        ],
        "ID",
    ),
    **dict.fromkeys(["dob", "dateofbirth", "birthdate", "birthday", "deathdate", "dateofdeath"], "DATE"),
}


def _normal_key(key: str) -> str:
    return re.sub(r"[^a-z]", "", key.lower())


class _Pending:
    """A free-text string waiting for the batched text de-identifier."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class FhirDeidentifier:
    """Holds the text de-identifier (loaded once) and the run's keyed pseudonyms."""

    def __init__(self, config: DeidConfig | None = None, text: TextDeidentifier | None = None) -> None:
        self.config = config or DeidConfig()
        self.text = text or TextDeidentifier(self.config)
        self.today = date.today()
        # With placeholders only, a string's output does not depend on its patient: codings and
        # displays repeated across bundles are analysed once per run.
        operators = {self.config.operator, *self.config.operators.values()}
        self.scoped = operators != {"placeholder"}
        self.done: dict[tuple[str, str], str] = {}

    def deidentify(self, documents: Sequence[Json]) -> list[Json]:
        """Bundles, resources or plain JSON documents in, de-identified copies out (inputs untouched)."""
        pending: list[_Pending] = []
        scopes: list[str] = []
        outputs = []
        for document in documents:
            scope = _patient_id(document) or pseudonym_id(self.config, repr(document)[:4096])
            walker = _Walker(self.config, scope, self.today, pending, _resource_types(document))
            before = len(pending)
            outputs.append(walker.value(document, key="", owner=""))
            scopes.extend([scope] * (len(pending) - before))
        keys = [(p.text, scope if self.scoped else "") for p, scope in zip(pending, scopes, strict=True)]
        unique = [key for key in dict.fromkeys(keys) if key not in self.done]
        if unique:
            results = self.text.deidentify_batch([t for t, _ in unique], [s or t for t, s in unique])
            if len(self.done) > _MAX_CACHED:
                self.done.clear()
            self.done.update((key, result.text) for key, result in zip(unique, results, strict=True))
        for item, key in zip(pending, keys, strict=True):
            item.text = self.done[key]
        return [_resolve(output) for output in outputs]


def deidentify_bundle(bundle: dict, deidentifier: FhirDeidentifier | None = None) -> dict:
    """One bundle (or resource); pass a `FhirDeidentifier` to reuse its loaded models across calls."""
    return (deidentifier or _default()).deidentify([bundle])[0]


@cache
def _default() -> FhirDeidentifier:
    return FhirDeidentifier()


def _is_uid(value: str) -> bool:
    return bool(_UUID.search(value) or _DICOM_UID.match(value))


def _resource_types(document: Json) -> dict[str, str]:
    """fullUrl -> resourceType of a bundle's entries, to tell what a urn:uuid reference points at."""
    types = {}
    if isinstance(document, dict):
        for entry in document.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(entry.get("fullUrl"), str):
                types[entry["fullUrl"]] = str(resource.get("resourceType"))
    return types


def _patient_id(document: Json) -> str | None:
    """The scope of surrogates and date shifts: the bundle's Patient, so intervals survive."""
    if isinstance(document, dict):
        if document.get("resourceType") == "Patient" and isinstance(document.get("id"), str):
            return document["id"]
        for entry in document.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            found = _patient_id(resource) if isinstance(resource, dict) else None
            if found:
                return found
    return None


def _resolve(value: Json) -> Json:
    if isinstance(value, _Pending):
        return value.text
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


class _Walker:
    """One document's rewrite; `owner` is the resourceType of the innermost enclosing resource."""

    def __init__(
        self, config: DeidConfig, scope: str, today: date, pending: list[_Pending], types: dict[str, str]
    ) -> None:
        self.config = config
        self.types = types
        self.today = today
        self.pending = pending
        self.shift = shift_days(config, scope) if config.operators.get("DATE") == "date_shift" else None

    def value(self, value: Json, key: str, owner: str) -> Json:
        if isinstance(value, dict):
            return self.obj(value, key, owner)
        if isinstance(value, list):
            return [self.value(item, key, owner) for item in value]
        if isinstance(value, str):
            return self.string(value, key, owner)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None if _GENERIC_KEYS.get(_normal_key(key)) == "LOCATION" else value
        return value

    def obj(self, value: dict, key: str, owner: str) -> Json:
        owner = value["resourceType"] if isinstance(value.get("resourceType"), str) else owner
        url = str(value.get("url", "")).lower()
        if key in ("extension", "modifierExtension") and any(part in url for part in _PHI_EXTENSIONS):
            return {"url": value.get("url")}
        if key in ("name", "alias") and ({"family", "given", "text"} & value.keys()):
            return self.human_name(value)
        if key in ("address", "valueAddress"):
            return {k: v for k, v in value.items() if k in _ADDRESS_KEEP}
        if key in ("telecom", "valueContactPoint"):
            return self.contact_point(value)
        if key == "text" and "div" in value and value.get("status") == "generated":
            # A generated narrative restates the structured fields, names and addresses included.
            return {"status": "empty", "div": _EMPTY_DIV}
        if "reference" in value or isinstance(value.get("type"), str) or key in _PARTY_KEYS:
            return self.reference(value, key, owner)
        return {k: self.value(v, k, owner) for k, v in value.items()}

    @staticmethod
    def human_name(value: dict) -> dict:
        out = {"text": "<PERSON>"}
        if isinstance(value.get("use"), str):
            out["use"] = value["use"]
        return out

    @staticmethod
    def contact_point(value: dict) -> dict:
        system = value.get("system") if isinstance(value.get("system"), str) else "other"
        entity = {"email": "<EMAIL_ADDRESS>", "url": "<URL>"}.get(system, "<PHONE_NUMBER>")
        kept = {k: v for k, v in value.items() if k in ("system", "use", "rank")}
        return {**kept, "value": entity} if "value" in value else kept

    def reference(self, value: dict, key: str, owner: str) -> dict:
        """A reference's display names its target ("Dr. Winifred Ashcombe"): a placeholder where the
        target is a person, a place or an organisation, the text de-identifier otherwise."""
        reference = str(value.get("reference") or "")
        target = value.get("type") if isinstance(value.get("type"), str) else None
        target = target or self.types.get(reference) or reference.rpartition("/")[0].rpartition("/")[2]
        party = target in _NAMED_TYPES or (not target and key in _PARTY_KEYS)
        out = {}
        for k, v in value.items():
            if k == "display" and isinstance(v, str):
                out[k] = f"<{(target or 'party').upper()}>" if party else self.free_text(v)
            else:
                out[k] = self.value(v, k, owner)
        return out

    def string(self, value: str, key: str, owner: str) -> Json:
        if key in ("id", "value") or key.endswith("Id"):
            return self.identifier(value) if _is_uid(value) else pseudonym_id(self.config, value)
        if key in ("fullUrl", "reference", "url"):
            return self.identifier(value, typed=key != "url")
        if key in _CODE_KEYS or key.endswith(("Code", "Uri", "Url", "Canonical")):
            return value
        if key == "name" and owner in _NAMED_TYPES:
            return (
                "<PERSON>"
                if owner in ("Patient", "Practitioner", "RelatedPerson", "Person")
                else "<ORGANIZATION>"
            )
        if key in ("uid", "studyUid", "seriesUid") or _DICOM_UID.match(value):
            return self.identifier(value)
        if _ISO_DATE.match(value):
            return self.date(value, key)
        generic = _GENERIC_KEYS.get(_normal_key(key))
        if generic == "DATE":
            return "<DATE>"
        if generic is not None and not (owner and generic == "PERSON"):
            return f"<{generic}>"
        return self.free_text(value)

    def identifier(self, value: str, typed: bool = False) -> str:
        """UUIDs and UIDs keep their form (so references and urn:uuid links resolve); the rest of
        the string is kept where it is structure ("urn:uuid:", "Patient/" where `typed`)."""
        if _DICOM_UID.match(value):
            return pseudonym_uid(self.config, value.removeprefix("urn:oid:"))
        if _UUID.search(value):
            return _UUID.sub(lambda m: pseudonym_uuid(self.config, m.group().lower()), value)
        head, _, tail = value.rpartition("/")
        if typed and tail and re.fullmatch(r"[A-Z][A-Za-z]+", head.rpartition("/")[2]):
            return f"{head}/{pseudonym_id(self.config, tail)}"
        return value

    def date(self, value: str, key: str) -> str:
        """Generalised to the year (Safe Harbor), or shifted per patient with its time of day kept;
        birth years that put the patient over 89 are folded into a year 90 years back."""
        match = _ISO_DATE.match(value)
        assert match is not None
        year = int(match.group(1))
        if key == "birthDate" and self.today.year - year > 89:
            return str(self.today.year - 90)
        if self.shift is None or not match.group(3):
            return match.group(1)
        moved = datetime(year, int(match.group(2)), int(match.group(3))) + timedelta(days=self.shift)
        return moved.strftime("%Y-%m-%d") + (match.group(4) or "")

    def free_text(self, value: str) -> Json:
        if not any(c.isalpha() for c in value):
            return value
        item = _Pending(value)
        self.pending.append(item)
        return item


def run_tree(source: Path, target: Path, deidentifier: FhirDeidentifier) -> tuple[int, int]:
    """Every *.json under `source` to the same relative path under `target`: (written, unreadable).

    File names are kept (the contract) even where they carry a patient's name: they are never
    logged, and nothing inside the output repeats them.
    """
    files = sorted(p for p in source.rglob("*.json") if p.is_file())
    written = failed = 0
    for begin in range(0, len(files), 16):
        documents, kept = [], []
        for path in files[begin : begin + 16]:
            try:
                documents.append(json.loads(path.read_text(encoding="utf-8")))
                kept.append(path)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                failed += 1
        for path, output in zip(kept, deidentifier.deidentify(documents), strict=True):
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(output, ensure_ascii=False), encoding="utf-8")
            written += 1
    return written, failed
