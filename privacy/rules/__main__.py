"""`python -m medcurate.privacy.rules`: every rule, with its entity, kinds of text and literals."""

from __future__ import annotations

from medcurate.privacy.rules import RULES


def main() -> None:
    for rule in RULES:
        how = "pattern" if rule.pattern is not None else "function"
        kinds = ",".join(rule.kinds) or "any"
        literals = ",".join(sorted(rule.required_literals())[:6])
        option = f" (only with {rule.option})" if rule.option else ""
        print(f"{rule.name:26} {rule.entity:22} {how:8} {kinds:15} {literals}{option}")


if __name__ == "__main__":
    main()
