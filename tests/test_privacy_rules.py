"""Every de-identification rule is a named unit with invented examples it must find and
counterexamples it must leave alone; each is run here on its own."""

from __future__ import annotations

import re

import pytest

from medcurate.privacy.recognizers import ClinicalRecognizer
from medcurate.privacy.rules import RULES, Rule, run

EXAMPLES = [(rule, text, phi) for rule in RULES for text, phi in rule.examples]
COUNTEREXAMPLES = [(rule, text) for rule in RULES for text in rule.counterexamples]


def _id(value: object) -> str:
    return value.name if isinstance(value, Rule) else ""


def test_every_rule_has_a_name_and_examples() -> None:
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", rule.name), rule.name
        assert rule.examples and rule.counterexamples, rule.name


@pytest.mark.parametrize(("rule", "text", "phi"), EXAMPLES, ids=_id)
def test_rule_finds_its_examples(rule: Rule, text: str, phi: str) -> None:
    spans = list(run(rule, text))
    assert phi in [text[span.start : span.end] for span in spans]
    assert {span.rule for span in spans} == {rule.name}


@pytest.mark.parametrize(("rule", "text"), COUNTEREXAMPLES, ids=_id)
def test_rule_leaves_its_counterexamples_alone(rule: Rule, text: str) -> None:
    assert [text[span.start : span.end] for span in run(rule, text)] == []


def test_declared_literals_gate_the_rule() -> None:
    """A rule with declared literals does not run on a text that holds none of them."""
    gated = [rule for rule in RULES if rule.literals]
    assert gated
    for rule in gated:
        for text, _ in rule.examples:
            bare = re.sub(r"[A-Za-z]+", "x", text)  # no run of letters but "x" left
            assert not rule.applies(bare)


def test_options_switch_rules_on_and_off() -> None:
    default = {rule.name for rule in ClinicalRecognizer().rules}
    assert "history_year" in default and "any_year" not in default and "deny_list" not in default
    configured = {
        rule.name
        for rule in ClinicalRecognizer(deny_list=["Quillbyte"], redact_years=True, history_years=False).rules
    }
    assert {"any_year", "deny_list"} <= configured and "history_year" not in configured
    spans = list(ClinicalRecognizer(deny_list=["Quillbyte"]).spans("Works at QUILLBYTE."))
    assert [(s.rule, s.start, s.end) for s in spans if s.type == "DENY_LIST"] == [("deny_list", 9, 18)]
