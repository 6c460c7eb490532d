"""De-identification rules as small named units (see `base.Rule`), grouped by what they find.

`RULES` lists every rule in the order the clinical recognizer runs them: the patterns first,
then the rules that read everyday writing and prose, the years of clinical histories, and the
name and place rules. `python -m medcurate.privacy.rules` prints them.
"""

from __future__ import annotations

from medcurate.privacy.rules import addresses, contact, dates, everyday, identifiers, names, places
from medcurate.privacy.rules.base import KINDS, Rule, run
from medcurate.privacy.rules.shared import Span

PATTERN_RULES: list[Rule] = [
    *dates.PATTERN_RULES,
    *contact.PATTERN_RULES,
    *identifiers.PATTERN_RULES,
    *addresses.PATTERN_RULES,
    *places.PATTERN_RULES,
]
_FUNCTION_RULES = {
    rule.name: rule
    for module in (dates, contact, addresses, places, names, everyday)
    for rule in module.RULES
}
# Every rule but the deny list (which each configuration builds), in the order they run.
_ORDER = [
    "any_year",
    "cued_place",
    "cued_address",
    "country",
    "nationality",
    "lowercase_full_name",
    "firm",
    "proper_name",
    "everyday_place",
    "cued_everyday_name",
    "name_owner",
    "card_field",
    "job_title",
    "any_age",
    "phone_international",
    "address_block",
    "history_year",
    "titled_name",
    "staff_name",
    "relative_name",
    "credentialed_name",
    "age_statement_subject",
    "patient_cue_name",
    "header_name",
    "role_name",
    "listed_name",
    "lowercase_name",
    "signature",
    "name_before_phone",
    "family_name",
    "initial_name",
    "o_surname",
    "name_label",
    "first_name_subject",
    "census_name",
    "movement_place",
    "saint_upper",
    "unit_at_place",
    "ward",
    "us_town",
    "hospital_name",
    "medical_center_initials",
    "us_region",
    "employer",
]
RULES: list[Rule] = PATTERN_RULES + [_FUNCTION_RULES[name] for name in _ORDER]
# The rules that run before the deny list, and after it.
BEFORE_DENY = RULES[: len(PATTERN_RULES) + _ORDER.index("titled_name")]
AFTER_DENY = RULES[len(BEFORE_DENY) :]

if len({rule.name for rule in RULES}) != len(RULES) or len(RULES) != len(PATTERN_RULES) + len(
    _FUNCTION_RULES
):
    raise RuntimeError("every rule needs a unique name and a place in the order")

__all__ = ["AFTER_DENY", "BEFORE_DENY", "KINDS", "PATTERN_RULES", "RULES", "Rule", "Span", "run"]
