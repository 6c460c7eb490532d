"""Skip regex scans that cannot match, decided by reading the compiled pattern.

The recognizers run about a hundred patterns over every text. Most cannot match a given short text:
they need a digit it does not have, or start with a cue word ("mrn", "insurance", "daughter") it
never uses. Scanning for nothing still costs the regex engine a step at every position, so
`scan` first asks two cheap questions whose answers are read off the parsed pattern once:

- does every match need a digit somewhere in the text (in the match or in a lookaround)?
- which literal strings must every match start with?

Both answers are conservative ("no" and "none known" whenever the pattern is not understood), so a
gate can only skip a scan that would have found nothing: outputs are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

try:  # the parser `re` itself compiles with; private, so every use degrades to "no gate"
    from re import _constants, _parser
except ImportError:  # pragma: no cover - another Python
    _constants = _parser = None

_DIGITS = frozenset(range(ord("0"), ord("9") + 1))
_MAX_PREFIXES = 400
_MIN_PREFIX = 2  # shorter prefixes occur in nearly every text: not worth a look-up


@dataclass(frozen=True)
class Gate:
    digit: bool
    prefixes: tuple[str, ...] | None


def _only_digits(items: list[tuple[Any, Any]]) -> bool:
    chars: set[int] = set()
    for op, value in items:
        if op is _constants.LITERAL:
            chars.add(value)
        elif op is _constants.RANGE:
            chars.update(range(value[0], value[1] + 1))
        elif op is _constants.CATEGORY and value is _constants.CATEGORY_DIGIT:
            chars |= _DIGITS
        else:
            return False
    return bool(chars) and chars <= _DIGITS


def _needs_digit(sequence: Any) -> bool:
    for op, value in sequence:
        if (op is _constants.LITERAL and value in _DIGITS) or (op is _constants.IN and _only_digits(value)):
            return True
        if op is _constants.SUBPATTERN and _needs_digit(value[3]):
            return True
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT) and value[0] >= 1 and _needs_digit(value[2]):
            return True
        if op is _constants.BRANCH and all(_needs_digit(branch) for branch in value[1]):
            return True
        if op is _constants.ASSERT and _needs_digit(value[1]):
            return True
    return False


def _prefixes(sequence: Any) -> set[str] | None:
    """Strings one of which every match of `sequence` starts with (case-folded); None if unknown."""
    found = {""}
    for op, value in sequence:
        if op in (_constants.AT, _constants.ASSERT, _constants.ASSERT_NOT):
            continue  # \b, ^ and lookarounds consume no character
        if op is _constants.LITERAL:
            found = {p + chr(value) for p in found}
            continue
        if op is _constants.IN and len(value) <= 4 and all(o is _constants.LITERAL for o, _ in value):
            found = {p + chr(c) for p in found for _, c in value}
            continue
        if op is _constants.BRANCH:
            parts = [_prefixes(branch) for branch in value[1]]
            tail = None if any(part is None for part in parts) else set().union(*parts)  # type: ignore[arg-type]
        elif op is _constants.SUBPATTERN:
            tail = _prefixes(value[3])
        elif op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT) and value[0] >= 1:
            tail = _prefixes(value[2])
        else:
            tail = {""}
        if tail is None:
            return None
        found = {p + t for p in found for t in tail}
        break  # what follows a group may start anywhere inside it
    return found if len(found) <= _MAX_PREFIXES else None


@lru_cache(maxsize=1024)
def gate(pattern: re.Pattern[str]) -> Gate:
    if _parser is None:
        return Gate(False, None)
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
        prefixes = _prefixes(parsed)
        digit = _needs_digit(parsed)
    except Exception:  # an unreadable pattern is simply never skipped
        return Gate(False, None)
    if prefixes is not None:
        prefixes = {p.casefold() for p in prefixes}
    useful = prefixes is not None and min(map(len, prefixes)) >= _MIN_PREFIX
    return Gate(digit, tuple(sorted(prefixes)) if useful else None)  # type: ignore[arg-type]


@lru_cache(maxsize=256)
def _folded(text: str) -> str:
    """Case-folded text: a case-blind match of a literal leaves the folded literal in it."""
    return text.casefold()


_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=256)
def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def may_match(pattern: re.Pattern[str], text: str) -> bool:
    """False only where `pattern` provably cannot match `text`."""
    rule = gate(pattern)
    if rule.digit and not _has_digit(text):
        return False
    if rule.prefixes is not None:
        folded = _folded(text)
        return any(prefix in folded for prefix in rule.prefixes)
    return True


def scan(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]] | Iterable[re.Match[str]]:
    """`pattern.finditer(text)`, or nothing where it provably finds nothing."""
    return pattern.finditer(text) if may_match(pattern, text) else ()
