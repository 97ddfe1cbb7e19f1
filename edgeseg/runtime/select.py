"""Which series of a study folder to segment: the model contract's own rules plus the user's `--select`.

A real study folder holds more than the series the model is for: localizers, other contrasts, earlier
SEG/RTSTRUCT/SR objects, other modalities. Series that do not match are `skipped` with the rule that
skipped them (not `failed`: nothing is wrong with them). Rules (MONAI Deploy style), comma-separated:

    Keyword=value    equal, case-insensitive (Modality=MR)
    Keyword!=value   not equal
    Keyword~regex    regular expression found in the value, case-insensitive (SeriesDescription~T1)
    Keyword!~regex   not found

Keywords are DICOM attribute keywords, read from the series' first instance; a multi-valued attribute
(ImageType) matches when any of its values does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from edgeseg.errors import EdgesegError, nearest_key

_RULE = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*(!=|!~|=|~)\s*(.*?)\s*")


@dataclass(frozen=True)
class Rule:
    keyword: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.keyword}{self.op}{self.value}"

    def matches(self, ds) -> bool:
        raw = ds.get(self.keyword, None)
        values = [] if raw is None or raw == "" else [str(v) for v in (raw if isinstance(raw, (list, tuple)) or
                                                                         type(raw).__name__ == "MultiValue" else [raw])]
        if self.op in ("=", "!="):
            hit = any(v.strip().lower() == self.value.lower() for v in values)
        else:
            pattern = re.compile(self.value, re.IGNORECASE)
            hit = any(pattern.search(v) for v in values)
        return hit if self.op in ("=", "~") else not hit


def parse_rules(text: str | None) -> tuple[Rule, ...]:
    """'Modality=MR,SeriesDescription~T1' -> rules; a one-line EdgesegError for a malformed rule, an
    unknown keyword (with the nearest known one) or a bad regular expression."""
    from pydicom.datadict import keyword_dict

    rules = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        m = _RULE.fullmatch(part)
        if not m:
            raise EdgesegError(f"--select {part.strip()!r}: expected Keyword=value, Keyword!=value, Keyword~regex "
                               "or Keyword!~regex")
        keyword, op, value = m.groups()
        if keyword not in keyword_dict:
            raise EdgesegError(f"--select: unknown DICOM keyword {keyword!r}{nearest_key(keyword, keyword_dict)}")
        if "~" in op:
            try:
                re.compile(value)
            except re.error as exc:
                raise EdgesegError(f"--select {part.strip()!r}: bad regular expression ({exc})") from exc
        rules.append(Rule(keyword, op, value))
    return tuple(rules)


def skip_reason(header, contract, rules=()) -> str:
    """Why this series (represented by one instance's header) is not for this model; '' to segment it."""
    modality = str(header.get("Modality", "") or "")
    if contract.modality and modality and modality.upper() != contract.modality.upper():
        return f"modality {modality}: the model was trained for {contract.modality} only"
    image_type = [str(v).upper() for v in (header.get("ImageType", None) or [])]
    if "LOCALIZER" in image_type or "SCOUT" in image_type:
        return f"localizer (ImageType {'/'.join(image_type)})"
    for rule in rules:
        if not rule.matches(header):
            value = header.get(rule.keyword, "")
            return f"--select {rule}: {rule.keyword} is {str(value)!r}"
    return ""
