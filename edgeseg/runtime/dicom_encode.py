"""A small, fast encoder for datasets built in memory (explicit VR little endian, ASCII text).

pydicom's writer is general (any transfer syntax, character sets, raw elements, ambiguous VRs) and
pays for it per element: encoding a 32-slice SEG header (about 1,500 elements, mostly per-frame
functional groups) takes ~27 ms, as long as building it. This encoder handles only the plain case
and raises `Unsupported` for anything else, so the caller falls back to pydicom; within the plain
case it follows pydicom's value formatting, and tests compare its bytes with pydicom's.
"""
from __future__ import annotations

import io
import struct

LONG_LENGTH = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
NUMBER_STRINGS = {"DS", "IS"}
BYTES = {"OB", "OW", "UN", "OD", "OF", "OL", "OV"}
ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


class Unsupported(Exception):
    """This dataset needs pydicom's general writer (the message says why)."""


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def _date_time_text(vr: str, v) -> str:
    """pydicom's formatting of DA/TM/DT values given as date/time objects."""
    if isinstance(v, str):
        return v
    original = getattr(v, "original_string", None)
    if original is not None:
        return original
    if vr == "DA":
        return v.strftime("%Y%m%d")
    if vr == "TM":
        return v.strftime("%H%M%S.%f" if v.microsecond > 0 else "%H%M%S")
    raise Unsupported(f"{vr} value {v!r} without its original text")


def _text(vr: str, value) -> bytes:
    values = _values(value)
    if vr in NUMBER_STRINGS:
        parts = [v.original_string if hasattr(v, "original_string") else str(v) for v in values]
    elif vr in ("DA", "TM", "DT"):
        parts = [_date_time_text(vr, v) for v in values]
    elif vr == "PN":
        parts = [str(v) for v in values]
    else:
        parts = values
    try:
        raw = "\\".join(parts).encode("ascii")
    except (UnicodeEncodeError, TypeError) as exc:
        raise Unsupported(f"{vr} value is not plain ASCII text") from exc
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def encode_value(vr: str, value) -> bytes:
    if vr == "SQ":
        return b"".join(_item(item) for item in (value or []))
    if vr in BINARY:
        values = _values(value)
        return struct.pack(f"<{len(values)}{BINARY[vr]}", *values)
    if vr == "AT":
        out = b""
        for tag in _values(value):
            out += struct.pack("<HH", int(tag) >> 16, int(tag) & 0xFFFF)
        return out
    if vr in BYTES:
        raw = bytes(value or b"")
        return raw + b"\x00" * (len(raw) % 2)
    if " or " in vr or vr not in _STRING_VRS:
        raise Unsupported(f"VR {vr}")
    return _text(vr, value)


_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}


def _item(item) -> bytes:
    if getattr(item, "is_undefined_length_sequence_item", False):
        raise Unsupported("undefined-length sequence item")
    body = encode_dataset(item)
    return ITEM + struct.pack("<I", len(body)) + body


def encode_dataset(ds) -> bytes:
    """The dataset's elements in tag order (group lengths of groups > 6 dropped, as pydicom does)."""
    from pydicom.dataelem import RawDataElement

    out = io.BytesIO()
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement):
            raise Unsupported("raw (not yet decoded) element")
        if getattr(elem, "is_undefined_length", False):
            raise Unsupported("undefined-length element")
        vr = elem.VR
        value = encode_value(vr, elem.value)
        if vr in LONG_LENGTH:
            head = struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value))
        else:
            if len(value) > 0xFFFF:
                raise Unsupported(f"{vr} value longer than 64 KiB")
            head = struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value))
        out.write(head)
        out.write(value)
    return out.getvalue()


def encode_file(ds) -> bytes:
    """Preamble, file meta (written by pydicom) and the dataset, as `save_as` with a file format would."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    if str(ds.file_meta.get("TransferSyntaxUID", "")) != EXPLICIT_VR_LITTLE_ENDIAN:
        raise Unsupported("transfer syntax is not explicit VR little endian")
    charset = ds.get("SpecificCharacterSet", None)
    if charset not in (None, "", "ISO_IR 100", "ISO_IR 6", "ISO_IR 192"):
        raise Unsupported(f"character set {charset}")
    body = encode_dataset(ds)
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    preamble = getattr(ds, "preamble", None) or b"\x00" * 128
    return preamble + b"DICM" + meta.getvalue() + body
