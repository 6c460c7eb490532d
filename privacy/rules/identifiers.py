"""Numbers that identify a person: social security, record, account, plan, licence, vehicle
and device numbers, card and bank numbers, postal codes named as such (Safe Harbor)."""

from __future__ import annotations

from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.shared import (
    _ID_VALUE,
    MEDIUM,
    STRONG,
)

PATTERN_RULES = [
    Rule(
        "ssn",
        "US_SSN",
        STRONG,
        r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b",
        examples=(("Number 219-09-9991 on file.", "219-09-9991"),),
        counterexamples=("Number 999-09-9991 on file.",),
    ),
    Rule(
        "ssn_cued",
        "US_SSN",
        STRONG,
        r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[#:]?\s*(\d[\d -]{7,10}\d)",
        group=1,
        examples=(("SSN: 219 09 9991", "219 09 9991"),),
        counterexamples=("SSN not given.",),
    ),
    # Record, account, plan, licence, vehicle and device numbers, recognised by their label.
    Rule(
        "mrn_cued",
        "MEDICAL_RECORD_NUMBER",
        STRONG,
        r"\b(?:mrn|emr|ehr|hicn|mbi|mr\s*#|mr\s+no\.?|medical\s+record(?:\s+(?:number|no\.?|num|#))?|record\s*(?:#|no\.?|number)|"
        r"unit\s+(?:no\.?|number)|patient\s+(?:id|number|no\.?|#)|pt\s+id|hospital\s+(?:id|number|#))"
        rf"\s*(?:is\s+)?[#:]?\s*[#:]?\s*{_ID_VALUE}",
        group=1,
        examples=(("MRN: 48213377", "48213377"),),
        counterexamples=("Medical history reviewed.",),
    ),
    Rule(
        "account_cued",
        "ACCOUNT_NUMBER",
        STRONG,
        rf"\b(?:account|acct|billing)\s*(?:number|no\.?|num|#|id)?\s*(?:is\s+)?[#:]?\s*[#:]?\s*{_ID_VALUE}",
        group=1,
        examples=(("Acct#: GRM-998871", "GRM-998871"),),
        counterexamples=("Billed to the family.",),
    ),
    Rule(
        "health_plan_cued",
        "HEALTH_PLAN_NUMBER",
        STRONG,
        r"\b(?:insurance|insurer|policy|plan|member|subscriber|beneficiary|medicare|medicaid|group|"
        r"coverage|payer|hmo|ppo)\s*(?:id|number|no\.?|num|#|policy(?:\s+number)?)?\s*(?:is\s+)?[#:]?\s*"
        rf"[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        group=1,
        examples=(("Insurance ID: HX-223347", "HX-223347"),),
        counterexamples=("Insurance pending review.",),
    ),
    Rule(
        "license_cued",
        "LICENSE_NUMBER",
        STRONG,
        r"\b(?:licen[cs]e|lic\.?|dl|driver'?s\s+licen[cs]e|certificate|cert\.?|dea|npi|registration|"
        rf"passport)\s*(?:number|no\.?|num|#|id)?\s*(?:is\s+)?[#:]?\s*[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        group=1,
        examples=(("License No: CLN-112239", "CLN-112239"),),
        counterexamples=("License renewed last year.",),
    ),
    Rule(
        "id_cued",
        "ID",
        STRONG,
        r"\b(?:id|identifier|ref(?:erence)?|case|case\s+number|site\s+id|study\s+id|file|claim|order|"
        rf"accession|requisition|ticket|serial|sn|s/n|device|imei|vin|plate|tag)\s*(?:number|no\.?|num|#|id)?"
        rf"\s*(?:is\s+)?[#:]?\s*[#:]?\s*(?=[A-Z0-9-]*\d){_ID_VALUE}",
        group=1,
        examples=(("Claim number 55012873 filed.", "55012873"),),
        counterexamples=("Case discussed with team.",),
    ),
    Rule(
        "id_hash",
        "ID",
        MEDIUM,
        r"#\s*([A-Z0-9][A-Z0-9-]{3,})\b",
        group=1,
        examples=(("Order #QX4471 sent.", "#QX4471"),),
        counterexamples=("Room # 3 is free.",),
    ),
    Rule(
        "id_shaped",
        "ID",
        MEDIUM,
        r"\b([A-Z]{2,4}-\d{3,}[A-Z0-9-]*|\d{3,}-\d{2,}-\d{2,}[A-Z0-9-]*)\b",
        group=1,
        examples=(("Specimen QX-448812 logged.", "QX-448812"),),
        counterexamples=("Ratio 1-2 daily.",),
    ),
    Rule(
        "vin",
        "VEHICLE_ID",
        STRONG,
        r"\b(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}\b",
        examples=(("VIN 1HGCM82633A004352 on the form.", "1HGCM82633A004352"),),
        counterexamples=("Code ABCDEFGHJKLMNPRST on the form.",),
    ),
    Rule(
        "uuid",
        "ID",
        MEDIUM,
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        examples=(
            ("Record 3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f opened.", "3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f"),
        ),
        counterexamples=("Hash 3f2a9c1e opened.",),
    ),
    Rule(
        "credit_card_shaped",
        "CREDIT_CARD",
        MEDIUM,
        r"\b(?:\d{4}[- ]?){3}\d{1,4}\b",
        examples=(("Card 4111 1111 1111 1111 declined.", "4111 1111 1111 1111"),),
        counterexamples=("Counts 4111 1111 today.",),
    ),
    Rule(
        "iban_shaped",
        "IBAN_CODE",
        MEDIUM,
        r"\b(?-i:[A-Z]{2}\d{2})(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b",
        examples=(("Pay to DE89 3704 0044 0532 0130 00 today.", "DE89 3704 0044 0532 0130 00"),),
        counterexamples=("Room AB12 CDEF GHIJ today.",),
    ),
    Rule(
        "iban_cued",
        "IBAN_CODE",
        STRONG,
        r"\biban\s*(?:is|:|#)?\s*([a-z]{2}\d{2}[a-z0-9 ]{8,30}[a-z0-9])",
        group=1,
        examples=(("IBAN: GB29 NWBK 6016 1331 9268 19", "GB29 NWBK 6016 1331 9268 19"),),
        counterexamples=("IBAN not provided.",),
    ),
    Rule(
        "credit_card_cued",
        "CREDIT_CARD",
        STRONG,
        r"\b(?:card|cc|credit\s+card|debit\s+card)\s*(?:number|no\.?|#)?\s*(?:is|:)?\s*(\d(?:[ -]?\d){11,18})\b",
        group=1,
        examples=(("Credit card number 4111-1111-1111-1111", "4111-1111-1111-1111"),),
        counterexamples=("Card sent to family.",),
    ),
    Rule(
        "postal_code_cued",
        "ZIP_CODE",
        STRONG,
        r"\b(?:zip|postal)\s*(?:code)?\s*(?:is|:)?\s*((?-i:[A-Z0-9]{2,6})(?:[ -][A-Z0-9]{2,4})?)\b",
        group=1,
        examples=(("Postal code: SW1A 1AA", "SW1A 1AA"),),
        counterexamples=("Zip file attached.",),
    ),
]
