"""A de-identification rule as a named unit, and the runner that applies one to a text.

A rule finds one kind of PHI one way: a regular expression (with the capture group holding the
PHI) or a function over the text. It says on which kinds of text it runs, which words a text must
hold for it to match at all, and carries invented examples it must find and counterexamples it must
leave alone (a test runs them). Every span it yields names it, so that a redaction can be traced
to the rule that made it and a benchmark can count what each rule contributes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from medcurate.privacy.regex_gate import gate, scan
from medcurate.privacy.rules.kinds import clinical_record, everyday, is_prose, may_hold, mostly_upper
from medcurate.privacy.rules.shared import Span, accept

# The kinds of text a rule can be limited to: written in upper and lower case (not an UPPER CASE
# note), everyday writing (hardly any clinical word), ordinary prose, a clinical record.
KINDS: dict[str, Callable[[str], bool]] = {
    "cased": lambda text: not mostly_upper(text),
    "everyday": everyday,
    "prose": is_prose,
    "record": clinical_record,
}


@dataclass(frozen=True)
class Rule:
    """One named way to find PHI.

    `pattern` (a string is compiled case-blind) or `function` finds candidates; a pattern's spans
    are `group` of each match, of type `entity` at `score`, and pass the shape checks shared by all
    patterns (`accept`) unless `checked` is false; a function yields its own spans (`entity` and
    `score` then say what it mostly yields). The rule runs only on texts of all its `kinds`, and
    only where the text holds one of its `literals` as a run of letters (case-blind; texts outside
    ASCII always). `option` names the recognizer setting that switches it on. `examples` are
    (text, PHI the rule must find in it); `counterexamples` are texts where it must find nothing.
    """

    name: str
    entity: str
    score: float
    pattern: re.Pattern[str] | str | None = None
    group: int = 0
    function: Callable[[str], Iterable[Span]] | None = None
    kinds: tuple[str, ...] = ()
    literals: frozenset[str] = frozenset()
    checked: bool = True
    option: str = ""
    examples: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    counterexamples: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.pattern, str):
            object.__setattr__(self, "pattern", re.compile(self.pattern, re.IGNORECASE))
        if (self.pattern is None) == (self.function is None):
            raise ValueError(f"rule {self.name}: give a pattern or a function")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"rule {self.name}: unknown text kinds {sorted(unknown)}")

    def required_literals(self) -> frozenset[str]:
        """The words a text must hold for the rule to match: declared, or read off its pattern."""
        if self.literals or not isinstance(self.pattern, re.Pattern):
            return self.literals
        return frozenset(gate(self.pattern).literals or ())

    def applies(self, text: str) -> bool:
        if self.literals and not may_hold(text, self.literals):
            return False
        return all(KINDS[kind](text) for kind in self.kinds)


def run(rule: Rule, text: str) -> Iterator[Span]:
    """The spans `rule` finds in `text`, each naming the rule."""
    if not rule.applies(text):
        return
    if rule.function is not None:
        for span in rule.function(text):
            yield span if span.rule else replace(span, rule=rule.name)
        return
    assert isinstance(rule.pattern, re.Pattern)
    for match in scan(rule.pattern, text):
        start, end = match.span(rule.group)
        if rule.checked:
            bounds = accept(rule.entity, rule.score, text, start, end)
            if bounds is None:
                continue
            start, end = bounds
            if end <= start:
                continue
        yield Span(rule.entity, start, end, rule.score, rule.name)
