"""Bencoding (BEP 3): the tracker's answers, and the decoder that tests and peers need.

Values: int, bytes (str is encoded as UTF-8), list, dict with bytes or str keys
(sorted by their raw bytes, as BEP 3 requires). Decoding takes bytes and
raises `BencodeError` on anything malformed; it never trusts a length field.
"""

from __future__ import annotations

from typing import TypeAlias

Value: TypeAlias = int | bytes | str | list["Value"] | dict[bytes | str, "Value"]
Decoded: TypeAlias = int | bytes | list["Decoded"] | dict[bytes, "Decoded"]


class BencodeError(ValueError):
    """The input is not valid bencoding."""


def _key(key: bytes | str) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes | str):
        raw = value.encode() if isinstance(value, str) else value
        out.append(b"%d:%s" % (len(raw), raw))
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        for key, item in sorted(value.items(), key=lambda kv: _key(kv[0])):
            _encode(_key(key), out)
            _encode(item, out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def encode(value: Value) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _canonical(text: bytes, signed: bool) -> bool:
    """Digits only, no leading zero, no "-0"; a sign only where `signed`."""
    digits = text[1:] if signed and text.startswith(b"-") else text
    if not digits.isdigit():
        return False
    return text == b"0" or not digits.startswith(b"0")


def _int_at(data: bytes, start: int, end_byte: bytes) -> tuple[int, int]:
    end = data.find(end_byte, start, start + 32)
    if end < 0:
        raise BencodeError("unterminated integer")
    text = data[start:end]
    if not _canonical(text, signed=end_byte == b"e"):
        raise BencodeError(f"bad integer {text!r}")
    return int(text), end + 1


def _decode(data: bytes, pos: int, depth: int) -> tuple[Decoded, int]:
    if depth > 64:
        raise BencodeError("nested too deeply")
    if pos >= len(data):
        raise BencodeError("truncated")
    lead = data[pos : pos + 1]
    if lead == b"i":
        return _int_at(data, pos + 1, b"e")
    if lead == b"l":
        items: list[Decoded] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        return _decode_dict(data, pos + 1, depth)
    if lead.isdigit():
        length, pos = _int_at(data, pos, b":")
        if pos + length > len(data):
            raise BencodeError("string runs past the end")
        return data[pos : pos + length], pos + length
    raise BencodeError(f"unexpected byte {lead!r} at {pos}")


def _decode_dict(data: bytes, pos: int, depth: int) -> tuple[Decoded, int]:
    result: dict[bytes, Decoded] = {}
    while data[pos : pos + 1] != b"e":
        key, pos = _decode(data, pos, depth + 1)
        if not isinstance(key, bytes):
            raise BencodeError("dictionary key is not a string")
        result[key], pos = _decode(data, pos, depth + 1)
    return result, pos + 1


def decode(data: bytes) -> Decoded:
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError("trailing bytes")
    return value
