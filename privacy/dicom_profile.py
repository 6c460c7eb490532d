"""PS3.15 Table E.1-1, Basic Profile column, read from a maintained copy of the standard's table.

The rows come from `dicom-anonymizer` (KitwareMedical), whose per-edition modules are scraped
from the standard's own Table E.1-1, Basic Profile column (every row, 50xx/60xx repeating groups
as masked tags; the one row without a tag, Private Attributes X, is the de-identifier's removal
of private tags). `EDITION` picks the module; the edition and the package version are named in
`PROFILE_SOURCE`, which the de-identifier writes to DeidentificationMethod. Nothing here is
hand-kept except `EXTRA_ROWS`, four attributes removed in addition to the profile.

Actions, as PS3.15 E.3 defines them (compound ones resolved to their most protective reading):
D dummy value of the VR, Z zero length, X remove, K keep, C clean (text de-identification, else
empty), U consistent non-reversible UID; Z/D -> Z, X/Z, X/D, X/Z/D -> X; X/Z/U* -> U*: the
sequence stays so that references resolve, its items get their own rows and their UIDs remapped.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

EDITION = "2026c"
_table = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.dicomfields_{EDITION}")
PROFILE_SOURCE = f"PS3.15 E.1-1 {EDITION} via dicom-anonymizer {version('dicom-anonymizer')}"
# dicom-anonymizer's list names -> the action as Table E.1-1 writes it.
_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
RESOLVED = {"Z/D": "Z", "X/Z": "X", "X/D": "X", "X/Z/D": "X", "X/Z/U*": "U*"}
ACTIONS = frozenset({"D", "Z", "X", "K", "C", "U"})
# Removed although the current table does not list them: the code meanings of these sequences
# are typed at the RIS and repeat the descriptions the profile removes; the file meta's sending
# AE title names a site's device as Station Name does.
EXTRA_ROWS = {
    "RequestedProcedureCodeSequence": "X",
    "PerformedProtocolCodeSequence": "X",
    "ProcedureCodeSequence": "X",
    "SourceApplicationEntityTitle": "X",
}


@dataclass(frozen=True)
class Row:
    """One row of Table E.1-1: tags match when `tag & mask == value` (50xx, 60xx groups)."""

    value: int
    mask: int
    action: str  # as the standard writes it ("X/Z/D")

    @property
    def name(self) -> str:
        """The keyword, or the tag with xx for a repeating group or an attribute pydicom lacks."""
        if self.mask == 0xFFFFFFFF:
            return keyword_for_tag(self.value) or f"({self.value >> 16:04X},{self.value & 0xFFFF:04X})"
        group = f"{self.value >> 24:02X}xx"
        element = "xxxx" if self.mask & 0xFFFF == 0 else f"{self.value & 0xFFFF:04X}"
        return f"({group},{element})"


def _rows() -> tuple[Row, ...]:
    rows = []
    for category, action in _CATEGORIES.items():
        for entry in getattr(_table, category):
            if len(entry) == 2:
                rows.append(Row(entry[0] << 16 | entry[1], 0xFFFFFFFF, action))
            else:
                group, element, group_mask, element_mask = entry
                mask = group_mask << 16 | element_mask
                rows.append(Row((group << 16 | element) & mask, mask, action))
    return tuple(rows)


ROWS = _rows()
_EXACT = {row.value: row.action for row in ROWS if row.mask == 0xFFFFFFFF}
_MASKED = tuple(row for row in ROWS if row.mask != 0xFFFFFFFF)
for _keyword, _action in EXTRA_ROWS.items():
    _EXACT.setdefault(tag_for_keyword(_keyword), _action)


def standard_action(tag: int) -> str | None:
    """The table's action for `tag` as written ("X/Z"), None where the table has no row."""
    action = _EXACT.get(tag)
    if action is None:
        action = next((row.action for row in _MASKED if tag & row.mask == row.value), None)
    return action


def resolve(action: str) -> str:
    """The most protective reading of a compound action (single actions are returned as they are)."""
    return RESOLVED.get(action, action)


def overrides(actions: dict[str, str]) -> dict[int, str]:
    """A deployment's keyword -> action choices (the standard's options: K to retain, C to clean)."""
    resolved = {}
    for keyword, action in actions.items():
        tag = tag_for_keyword(keyword)
        if tag is None or action not in ACTIONS:
            raise ValueError(f"dicom_actions: {keyword}: {action} is not a DICOM keyword and an action")
        resolved[tag] = action
    return resolved


# Dummy values (D) per value representation: non-zero length, valid for the VR, saying nothing.
_TEXT_DUMMY = "ANONYMIZED"
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": _TEXT_DUMMY,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "PN": "ANONYMOUS",
    "TM": "000000",
}
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMERIC_VRS = frozenset({"AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"})


def dummy(vr: str) -> Any:
    """A non-zero-length dummy value of the VR (UIDs are remapped by the caller instead)."""
    if vr == "SQ":
        return DicomSequence([Dataset()])
    if vr in _BINARY_VRS:
        return b"\x00\x00"
    if vr in _NUMERIC_VRS:
        return 0
    return _DUMMY.get(vr, _TEXT_DUMMY)
