"""Skip regex scans that cannot match, decided by reading the compiled pattern.

The recognizers run about a hundred patterns over every text. Most cannot match a given short text:
they need a digit it does not have, or start with a cue word ("mrn", "insurance", "daughter") it
never uses. Scanning for nothing still costs the regex engine a step at every position, so
`scan` first asks two cheap questions whose answers are read off the parsed pattern once:

- does every match need a digit somewhere in the text (in the match or in a lookaround)?
- which literal strings must a text hold, one of them at least, for the pattern to match? (Every
  match of a part of the pattern starts with one of that part's literal prefixes: "mrn" or "emr"
  for a record-number label, a street word for a street written before its number.)

Both answers are conservative ("no" and "none known" whenever the pattern is not understood; no
literal gate on text outside ASCII), so a gate can only skip a scan that would have found
nothing: outputs are unchanged.
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
    literals: tuple[str, ...] | None


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


def _selective(found: set[str] | None) -> tuple[int, int]:
    """How well a set of literals narrows texts down: longer shortest string, then fewer strings."""
    if not found or min(map(len, found)) < _MIN_PREFIX:
        return (0, 0)
    return (min(map(len, found)), -len(found))


def _required(sequence: Any) -> set[str] | None:
    """The most selective set of literals one of which every match of `sequence` contains: the
    prefixes of each of its tails, and of the tails inside groups that must occur."""
    items = list(sequence)
    best: set[str] | None = None
    for index, (op, value) in enumerate(items):
        candidates = [_prefixes(items[index:])]
        if op is _constants.SUBPATTERN:
            candidates.append(_required(value[3]))
        elif op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT) and value[0] >= 1:
            candidates.append(_required(value[2]))
        for found in candidates:
            if _selective(found) > _selective(best):
                best = found
    return best


_GATES: dict[int, tuple[re.Pattern[str], Gate]] = {}


def gate(pattern: re.Pattern[str]) -> Gate:
    """The pattern's gate, read once (keyed by identity: hashing a compiled pattern hashes its whole
    program, which costs more than the look-up saves)."""
    known = _GATES.get(id(pattern))
    if known is None or known[0] is not pattern:
        known = _GATES[id(pattern)] = (pattern, _read(pattern))
    return known[1]


def _read(pattern: re.Pattern[str]) -> Gate:
    if _parser is None:
        return Gate(False, None)
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
        literals = _required(parsed)
        digit = _needs_digit(parsed)
    except Exception:  # an unreadable pattern is simply never skipped
        return Gate(False, None)
    folded = None if literals is None else {literal.lower() for literal in literals}
    return Gate(digit, tuple(sorted(folded)) if _selective(folded) > (0, 0) else None)


@lru_cache(maxsize=256)
def _folded(text: str) -> str | None:
    """Lower-cased text, where a case-blind match of a literal leaves the lower-cased literal in
    it; None outside ASCII, where the regex engine's per-character case rules ("İ" matches "i")
    and Python's string case mapping part ways."""
    return text.lower() if text.isascii() else None


_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=256)
def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def may_match(pattern: re.Pattern[str], text: str) -> bool:
    """False only where `pattern` provably cannot match `text`."""
    rule = gate(pattern)
    if rule.digit and not _has_digit(text):
        return False
    if rule.literals is not None and (folded := _folded(text)) is not None:
        return any(map(folded.__contains__, rule.literals))
    return True


def scan(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]] | Iterable[re.Match[str]]:
    """`pattern.finditer(text)`, or nothing where it provably finds nothing."""
    return pattern.finditer(text) if may_match(pattern, text) else ()
