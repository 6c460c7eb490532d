"""FHIR R4 resources into one readable clinical document per patient.

Data minimisation: the document carries clinical content (conditions, medications, allergies,
observations, encounters, procedures, immunizations, care plans, reports, notes), the patient's
sex and age (90 and over folded into "90 or older"), and years rather than full dates. Names,
addresses, telecom, identifiers, narratives (`text.div`), practitioners, organisations and
claims are never rendered; unknown resource types are counted and otherwise ignored. The text
de-identifier still runs afterwards, for what free-text notes may quote.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

Resource = dict[str, Any]

# Resource types whose content says something about the patient's care, in document order.
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("Condition", "Conditions"),
    ("MedicationRequest", "Medications"),
    ("MedicationStatement", "Medications"),
    ("AllergyIntolerance", "Allergies"),
    ("Immunization", "Immunizations"),
    ("Procedure", "Procedures"),
    ("Encounter", "Encounters"),
    ("Observation", "Observations"),
    ("DiagnosticReport", "Diagnostic reports"),
    ("CarePlan", "Care plans"),
    ("DocumentReference", "Notes"),
)
_OLDEST_AGE = 90
# Nobody on record is older than this: an earlier birth date is a data error.
_OLDEST_BIRTH_YEARS = 130
# Dates of things that have happened (not plans): none can lie in the future.
_EVENT_DATES = (
    "onsetDateTime",
    "recordedDate",
    "abatementDateTime",
    "authoredOn",
    "effectiveDateTime",
    "occurrenceDateTime",
    "performedDateTime",
    "issued",
    "date",
)
_EVENT_PERIODS = ("effectivePeriod", "performedPeriod", "onsetPeriod")


def check_resource(resource: Resource) -> str | None:
    """Why a resource the document would use is invalid (a reason code), or None when it is valid.

    The resource is validated against its FHIR R4B type with `fhir.resources` (an element of the
    wrong type or format, a malformed date: `invalid_fhir_<type>`; absent required elements
    are tolerated, exports often lack some and the document just omits them); then dates that cannot
    be true are rejected: a birth date in the future or more than 130 years ago
    (`impossible_birth_date`), an event dated in the future (`date_in_future`).
    """
    kind = resource.get("resourceType")
    if kind not in _CHECKED:
        return None  # never rendered: not worth rejecting a document for
    try:
        _model(kind).model_validate(resource)
    except ValidationError as error:
        # An absent required element (a MedicationRequest without `intent`) is simply not
        # rendered; only elements present with a wrong type, format or code reject.
        if any(not detail["type"].endswith("missing") for detail in error.errors()):
            return f"invalid_fhir_{_snake(kind)}"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    if kind == "Patient":
        born = resource.get("birthDate")
        oldest = str(date.today().year - _OLDEST_BIRTH_YEARS)
        if isinstance(born, str) and (born[:10] > tomorrow or born[:4] < oldest):
            return "impossible_birth_date"
        died = resource.get("deceasedDateTime")
        if isinstance(died, str) and (died[:10] > tomorrow or (isinstance(born, str) and died[:10] < born)):
            return "impossible_death_date"
        return None
    dates = [resource.get(key) for key in _EVENT_DATES]
    dates += [(resource.get(key) or {}).get("start") for key in _EVENT_PERIODS]
    if kind == "Encounter":
        dates.append((resource.get("period") or {}).get("start"))
    if any(isinstance(value, str) and value[:10] > tomorrow for value in dates):
        return "date_in_future"
    return None


@cache
def _model(kind: str) -> type[BaseModel]:
    from fhir.resources.R4B import get_fhir_model_class  # imported on first use: it is slow to load

    return get_fhir_model_class(kind)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_CHECKED = frozenset({"Patient", "Medication", "Observation", *(kind for kind, _ in _SECTIONS)})


def resources_of(value: Any) -> list[Resource]:
    """The resources of a Bundle (entries), of a list, or a lone resource; anything else is dropped."""
    if isinstance(value, list):
        return [resource for item in value for resource in resources_of(item)]
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return []
    if value["resourceType"] == "Bundle":
        entries = value.get("entry") if isinstance(value.get("entry"), list) else []
        return [
            r for entry in entries if isinstance(entry, dict) for r in resources_of(entry.get("resource"))
        ]
    return [value]


def _text_of(concept: Any) -> str:
    """Display text of a CodeableConcept (its text, else its first coding's display or code)."""
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict):
            label = coding.get("display") or coding.get("code")
            if isinstance(label, str) and label.strip():
                return label.strip()
    return ""


def _codes_of(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [
        f"{_system_name(c.get('system'))}:{c['code']}"
        for c in concept.get("coding") or []
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def _system_name(system: Any) -> str:
    known = {"snomed": "SNOMED", "loinc": "LOINC", "rxnorm": "RxNorm", "cvx": "CVX", "icd-10": "ICD10"}
    text = str(system or "").lower()
    return next((name for key, name in known.items() if key in text), "code")


def _year(value: Any) -> str:
    return value[:4] if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit() else ""


def _first_year(resource: Resource, *keys: str) -> str:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        year = _year(value)
        if year:
            return year
    return ""


def _status(resource: Resource, key: str = "clinicalStatus") -> str:
    value = resource.get(key)
    return _text_of(value) if isinstance(value, dict) else str(value or "")


def _quantity(value: Any) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return ""
    number = value["value"]
    shown = f"{number:.4g}" if isinstance(number, float) else str(number)
    unit = value.get("unit") or value.get("code") or ""
    return f"{shown} {unit}".strip()


def _observation_value(resource: Resource) -> str:
    if "valueQuantity" in resource:
        return _quantity(resource["valueQuantity"])
    if "valueCodeableConcept" in resource:
        return _text_of(resource["valueCodeableConcept"])
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in resource:
            return str(resource[key])
    parts = [_component(c) for c in resource.get("component") or [] if isinstance(c, dict)]
    return "; ".join(part.strip() for part in parts if part.strip())


def _component(component: Resource) -> str:
    value = _quantity(component.get("valueQuantity")) or _text_of(component.get("valueCodeableConcept"))
    return f"{_text_of(component.get('code'))} {value}"


def _with_details(label: str, *details: str) -> str:
    shown = [d for d in details if d]
    return f"{label} ({', '.join(shown)})" if shown else label


def _condition(r: Resource) -> str:
    onset = _first_year(r, "onsetDateTime", "onsetPeriod", "recordedDate")
    ended = _first_year(r, "abatementDateTime", "abatementPeriod")
    span = f"since {onset}" if onset and not ended else f"{onset}–{ended}" if onset else ""
    return _with_details(_text_of(r.get("code")), span, _status(r))


def _medication(r: Resource, medications: dict[str, Resource]) -> str:
    name = _text_of(r.get("medicationCodeableConcept"))
    reference = (r.get("medicationReference") or {}).get("reference", "")
    if not name and reference in medications:
        name = _text_of(medications[reference].get("code"))
    dosage = "; ".join(
        d["text"]
        for d in r.get("dosageInstruction") or r.get("dosage") or []
        if isinstance(d, dict) and d.get("text")
    )
    return _with_details(
        name,
        _first_year(r, "authoredOn", "effectiveDateTime", "effectivePeriod"),
        r.get("status", ""),
        dosage,
    )


def _allergy(r: Resource) -> str:
    reactions = [
        _text_of(m)
        for reaction in r.get("reaction") or []
        if isinstance(reaction, dict)
        for m in reaction.get("manifestation") or []
    ]
    return _with_details(_text_of(r.get("code")), ", ".join(reactions), r.get("criticality", ""), _status(r))


def _encounter(r: Resource) -> str:
    kinds = ", ".join(filter(None, (_text_of(t) for t in r.get("type") or [])))
    reasons = ", ".join(filter(None, (_text_of(c) for c in r.get("reasonCode") or [])))
    klass = r.get("class", {})
    setting = klass.get("display") or klass.get("code", "") if isinstance(klass, dict) else ""
    year = _first_year(r, "period")
    label = f"{year}: {kinds or 'encounter'}" if year else kinds or "encounter"
    return _with_details(label, setting, f"reason: {reasons}" if reasons else "")


def _care_plan(r: Resource) -> str:
    categories = ", ".join(filter(None, (_text_of(c) for c in r.get("category") or [])))
    activities = ", ".join(
        filter(
            None,
            (
                _text_of((a.get("detail") or {}).get("code"))
                for a in r.get("activity") or []
                if isinstance(a, dict)
            ),
        )
    )
    return _with_details(
        categories or "care plan", _first_year(r, "period", "created"), r.get("status", ""), activities
    )


def _report(r: Resource) -> str:
    label = _with_details(
        _text_of(r.get("code")), _first_year(r, "effectiveDateTime", "effectivePeriod", "issued")
    )
    texts = [r["conclusion"]] if isinstance(r.get("conclusion"), str) else []
    texts += [_attachment_text(form) for form in r.get("presentedForm") or []]
    body = "\n".join(t for t in texts if t)
    return f"{label}\n{body}" if body else label


def _note(r: Resource) -> str:
    label = _with_details(_text_of(r.get("type")) or "note", _first_year(r, "date"))
    texts = [_attachment_text(c.get("attachment")) for c in r.get("content") or [] if isinstance(c, dict)]
    body = "\n".join(t for t in texts if t)
    return f"{label}\n{body}" if body else label


def _attachment_text(attachment: Any) -> str:
    """Inline plain-text attachments only (`data`, base64); URLs are never fetched."""
    if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
        return ""
    if not str(attachment.get("contentType", "text/plain")).startswith("text/"):
        return ""
    try:
        return base64.b64decode(attachment["data"], validate=False).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _patient_key(resource: Resource) -> str | None:
    """The patient a resource is about, as `Patient/<id>` or the bundle's `urn:uuid:<id>`."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id", ""))
    for key in ("subject", "patient"):
        reference = resource.get(key)
        if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            return reference["reference"].rsplit("/", 1)[-1].removeprefix("urn:uuid:")
    return None


def _age(patient: Resource | None, resources: Iterable[Resource]) -> str:
    """Age at death, else at the latest dated record; 90 and over are one group (HIPAA Safe Harbor)."""
    birth = _year(patient.get("birthDate")) if patient else ""
    if not birth:
        return ""
    end = _year(patient.get("deceasedDateTime")) if patient else ""
    if not end:
        years = [
            _first_year(
                r,
                "effectiveDateTime",
                "period",
                "authoredOn",
                "occurrenceDateTime",
                "onsetDateTime",
                "performedPeriod",
            )
            for r in resources
        ]
        end = max((y for y in years if y), default=str(date.today().year))
    age = int(end) - int(birth)
    return f"{_OLDEST_AGE} or older" if age >= _OLDEST_AGE else str(max(age, 0))


def render_patients(resources: list[Resource]) -> list[tuple[str, dict[str, str]]]:
    """One (document, metadata) per patient in `resources`; resources of no known patient join
    the only patient when there is one, else a document of their own."""
    groups: dict[str | None, list[Resource]] = defaultdict(list)
    patients: dict[str, Resource] = {}
    for resource in resources:
        key = _patient_key(resource)
        if resource.get("resourceType") == "Patient" and key:
            patients[key] = resource
        groups[key].append(resource)
    if len(patients) <= 1 and None in groups and len(groups) > 1:
        orphans = groups.pop(None)
        next(iter(groups.values())).extend(orphans)
    medications = {
        f"{r['resourceType']}/{r.get('id')}": r for r in resources if r.get("resourceType") == "Medication"
    }
    medications.update(
        {f"urn:uuid:{r.get('id')}": r for r in resources if r.get("resourceType") == "Medication"}
    )
    documents = [render_patient(patients.get(key or ""), group, medications) for key, group in groups.items()]
    return [document for document in documents if document is not None]


def render_patient(
    patient: Resource | None, resources: list[Resource], medications: dict[str, Resource]
) -> tuple[str, dict[str, str]] | None:
    """The clinical document of one patient and its structured fields; None when it has no content."""
    renderers: dict[str, Callable[[Resource], str]] = {
        "Condition": _condition,
        "MedicationRequest": lambda r: _medication(r, medications),
        "MedicationStatement": lambda r: _medication(r, medications),
        "AllergyIntolerance": _allergy,
        "Immunization": lambda r: _with_details(
            _text_of(r.get("vaccineCode")), _first_year(r, "occurrenceDateTime")
        ),
        "Procedure": lambda r: _with_details(
            _text_of(r.get("code")), _first_year(r, "performedDateTime", "performedPeriod")
        ),
        "Encounter": _encounter,
        "DiagnosticReport": _report,
        "CarePlan": _care_plan,
        "DocumentReference": _note,
    }
    sections: dict[str, list[str]] = defaultdict(list)
    for resource in sorted(resources, key=_sort_key):
        kind = resource.get("resourceType")
        render = renderers.get(kind)  # type: ignore[arg-type]
        if render is None:
            continue
        title = next(t for k, t in _SECTIONS if k == kind)
        line = render(resource).strip()
        if line and line not in sections[title]:
            sections[title].append(line)
    observations = _latest_observations(resources)
    if observations:
        sections["Observations"] = observations
    counts = Counter(str(r.get("resourceType")) for r in resources)
    if not sections:
        return None
    sex = str(patient.get("gender", "")) if patient else ""
    age = _age(patient, resources)
    header = ", ".join(filter(None, (sex or "sex unknown", f"age {age}" if age else "")))
    lines = ["Clinical summary", f"Patient: {header}"]
    for title in dict.fromkeys(t for _, t in _SECTIONS):
        if sections.get(title):
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"- {item}" for item in sections[title])
    metadata = {
        "sex": sex,
        "age": age,
        "fhir_resources": ",".join(f"{k}={v}" for k, v in sorted(counts.items())),
        "condition_codes": ";".join(
            dict.fromkeys(
                c for r in resources if r.get("resourceType") == "Condition" for c in _codes_of(r.get("code"))
            )
        ),
        "medication_codes": ";".join(
            dict.fromkeys(
                c
                for r in resources
                if r.get("resourceType") in ("MedicationRequest", "MedicationStatement")
                for c in _codes_of(r.get("medicationCodeableConcept"))
            )
        ),
    }
    return "\n".join(lines), {k: v for k, v in metadata.items() if v}


def _sort_key(resource: Resource) -> str:
    return (
        _first_year(
            resource,
            "onsetDateTime",
            "authoredOn",
            "occurrenceDateTime",
            "performedPeriod",
            "period",
            "effectiveDateTime",
        )
        or "9999"
    )


def _latest_observations(resources: list[Resource]) -> list[str]:
    """The most recent value of each kind of observation, with its year and how many were taken."""
    latest: dict[str, tuple[str, str]] = {}
    taken: Counter[str] = Counter()
    for r in resources:
        if r.get("resourceType") != "Observation":
            continue
        name = _text_of(r.get("code"))
        value = _observation_value(r)
        if not name or not value:
            continue
        when = (
            r.get("effectiveDateTime")
            or (r.get("effectivePeriod") or {}).get("start")
            or r.get("issued")
            or ""
        )
        taken[name] += 1
        if name not in latest or str(when) >= latest[name][0]:
            latest[name] = (str(when), value)
    lines = []
    for name, (when, value) in sorted(latest.items()):
        times = f", {taken[name]} measurements" if taken[name] > 1 else ""
        year = _year(when)
        lines.append(
            f"{name}: {value}" + (f" ({year}{times})" if year else f" ({times[2:]})" if times else "")
        )
    return lines
