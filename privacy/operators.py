"""Anonymisation operators: typed placeholders, consistent surrogates and per-patient date shifting.

Surrogates and shifts are keyed by an HMAC of (secret, scope, value): the same name in the same
document or patient always gets the same surrogate, different scopes get unrelated ones, and without
the secret the mapping cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import date, timedelta
from functools import cache

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.vocab import first_names, last_names

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_NUMERIC = re.compile(r"^(\d{1,2})([/-])(\d{1,2})(?:\2(\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")
_MONTH_FIRST = re.compile(r"^([A-Za-z]+)\.?\s*(\d{1,2})(?:st|nd|rd|th)?(?:(,?\s*)(\d{4}))?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?(\s+of\s+|[\s-]+)([A-Za-z]+)\.?(?:(,?[\s-]*)(\d{4}))?$")


def _digest(config: DeidConfig, scope: str, value: str) -> int:
    key = config.surrogate_key.encode()
    message = f"{scope}\x00{value}".encode()
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:8], "big")


@cache
def _sorted_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(first_names())), tuple(sorted(last_names()))


def _match_case(surrogate: str, original: str) -> str:
    if original.isupper():
        return surrogate.upper()
    if original.islower():
        return surrogate.lower()
    return surrogate.capitalize()


def _person_surrogate(value: str, digest: int) -> str:
    firsts, lasts = _sorted_names()
    words = value.split()
    out = []
    for i, word in enumerate(words):
        pool = firsts if i == 0 and len(words) > 1 else lasts
        chosen = pool[(digest >> (i * 7)) % len(pool)]
        out.append(_match_case(chosen, word) if len(word) > 2 else chosen[0].upper() + word[1:])
    return " ".join(out)


def _shape_surrogate(value: str, digest: int) -> str:
    """Same shape, other characters: digits stay digits, letters letters, punctuation kept."""
    out = []
    state = digest
    for char in value:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        pick = state >> 33
        if char.isdigit():
            out.append(str(pick % 10))
        elif char.isalpha():
            letter = chr(ord("a") + pick % 26)
            out.append(letter.upper() if char.isupper() else letter)
        else:
            out.append(char)
    return "".join(out)


def surrogate(config: DeidConfig, entity: str, value: str, scope: str) -> str:
    digest = _digest(config, scope, value.strip().lower())
    if entity == "PERSON":
        return _person_surrogate(value, digest)
    if entity == "EMAIL_ADDRESS":
        return f"user{digest % 100000}@example.org"
    if entity == "URL":
        return f"https://example.org/{digest % 100000}"
    if entity == "PHONE_NUMBER" and sum(c.isdigit() for c in value) >= 10:
        return f"555-01{digest % 100:02d}-{digest % 10000:04d}"
    if entity in ("LOCATION", "FACILITY", "ORGANIZATION", "STREET_ADDRESS", "NRP", "TITLE", "DENY_LIST"):
        return f"<{entity}>"  # inventing plausible places misleads more than it helps
    return _shape_surrogate(value, digest)


def shift_days(config: DeidConfig, scope: str) -> int:
    """A per-patient offset in [-max, +max], never zero, stable across runs for the same secret."""
    span = config.date_shift_max_days
    offset = _digest(config, scope, "date-shift") % (2 * span) - span
    return offset or span


def _month_index(word: str) -> int | None:
    low = word.lower()[:3]
    return _MONTHS.index(low) + 1 if low in _MONTHS else None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def shift_date(value: str, days: int) -> str | None:
    """The date moved by `days`, written the way it was; None when the format is not understood."""
    text = value.strip()
    if match := _NUMERIC.match(text):
        month, sep, day, year = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
        full = int(year) if year and len(year) == 4 else (2000 + int(year) if year else 2001)
        if year and len(year) == 2 and int(year) > 30:
            full = 1900 + int(year)
        base = _safe_date(full, month, day)
        if base is None:
            return None
        moved = base + timedelta(days=days)
        out = f"{moved.month}{sep}{moved.day}"
        if year:
            out += sep + (str(moved.year) if len(year) == 4 else f"{moved.year % 100:02d}")
        return out
    if match := _ISO.match(text):
        base = _safe_date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        if base is None:
            return None
        sep = match.group(2)
        moved = base + timedelta(days=days)
        return f"{moved.year:04d}{sep}{moved.month:02d}{sep}{moved.day:02d}"
    if match := _MONTH_FIRST.match(text):
        month = _month_index(match.group(1))
        year = match.group(4)
        base = _safe_date(int(year) if year else 2001, month, int(match.group(2))) if month else None
        if base is None:
            return None
        moved = base + timedelta(days=days)
        out = f"{_MONTH_NAMES[moved.month - 1]} {moved.day}"
        return out + f"{match.group(3) or ', '}{moved.year}" if year else out
    if match := _DAY_FIRST.match(text):
        month = _month_index(match.group(3))
        year = match.group(5)
        base = _safe_date(int(year) if year else 2001, month, int(match.group(1))) if month else None
        if base is None:
            return None
        moved = base + timedelta(days=days)
        out = f"{moved.day} {_MONTH_NAMES[moved.month - 1]}"
        return out + f"{match.group(4) or ' '}{moved.year}" if year else out
    return None


def replacement(config: DeidConfig, entity: str, value: str, scope: str) -> str:
    operator = config.operators.get(entity, config.operator)
    if operator == "date_shift" and entity == "DATE":
        shifted = shift_date(value, shift_days(config, scope))
        if shifted is not None:
            return shifted
    elif operator == "surrogate":
        return surrogate(config, entity, value, scope)
    return f"<{entity}>"


def pseudonym_uuid(config: DeidConfig, value: str) -> str:
    """A UUID keyed on the secret: the same identifier maps to the same UUID across a run."""
    digest = hmac.new(config.surrogate_key.encode(), f"uuid\x00{value}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def pseudonym_uid(config: DeidConfig, value: str) -> str:
    """A DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2), keyed so references stay consistent."""
    return "2.25." + str(uuid.UUID(pseudonym_uuid(config, "uid\x00" + value)).int)


def pseudonym_id(config: DeidConfig, value: str) -> str:
    """Letters only: a pseudonymous identifier never reads as a date, ZIP code or phone number."""
    digest = hmac.new(config.surrogate_key.encode(), f"id\x00{value}".encode(), hashlib.sha256).digest()
    return "id-" + "".join(chr(ord("a") + b % 26) for b in digest[:12])
