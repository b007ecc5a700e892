"""Strict JSON decoding of every payload on the wire, before any schema is looked at.

Checks run in this order and the first failure names the reason (docs/protocol.md): empty,
too_large, bom, not_utf8, too_deep, invalid_json | duplicate_key | non_finite_number |
huge_number, not_utf8 (lone surrogate), not_an_object. warmcard.contract then checks the
version, the schema and the cross-field rules of each payload type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from warmcard.rejections import InvalidPayload, Reason

MAX_PAYLOAD_BYTES = 4096
MAX_NESTING = 4  # containers ({} or []) nested inside each other, the top level included
# Longer integer literals are never meaningful here; int() of a huge one costs quadratic time.
MAX_INT_DIGITS = 40

_UTF8_BOM = b"\xef\xbb\xbf"
# A JSON string, closed or not. Possessive quantifiers keep it linear: an unclosed string is
# consumed to the end once instead of being rescanned from every escaped quote inside it.
_STRING_TOKEN_RE = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidPayload(Reason.DUPLICATE_KEY, f"key {key[:50]!r} appears twice")
            seen.add(key)
    return result


def _reject_constant(name: str) -> float:
    raise InvalidPayload(Reason.NON_FINITE_NUMBER, f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):  # 1e400 is valid JSON that no double can hold
        raise InvalidPayload(Reason.HUGE_NUMBER, f"{text[:40]} overflows a double")
    return value


_INF = float("inf")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidPayload(Reason.HUGE_NUMBER, f"integer of {len(text)} digits")
    return int(text)


def _check_nesting(text: str) -> None:
    """Reject nesting deeper than MAX_NESTING before json.loads recurses into it."""
    # Only a text with more brackets than the limit can be too deep; valid events have one.
    if text.count("{") + text.count("[") <= MAX_NESTING:
        return
    depth = 0
    for token in _BRACKET_RE.finditer(_STRING_TOKEN_RE.sub("", text)):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise InvalidPayload(Reason.TOO_DEEP, f"nesting deeper than {MAX_NESTING}")
        else:
            depth -= 1


def decode_json(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Strict JSON object decoding shared by every payload type."""
    if not payload:
        raise InvalidPayload(Reason.EMPTY, "empty payload")
    if len(payload) > limit:
        raise InvalidPayload(Reason.TOO_LARGE, f"{len(payload)} bytes, limit {limit}")
    if payload.startswith(_UTF8_BOM):
        raise InvalidPayload(Reason.BOM, "payload starts with a UTF-8 byte order mark")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(Reason.NOT_UTF8, str(exc)) from None
    _check_nesting(text)
    try:
        data = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:  # unreachable after _check_nesting; kept as a last line of defence
        raise InvalidPayload(Reason.TOO_DEEP, "nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, or a number Python refuses to convert
        raise InvalidPayload(Reason.INVALID_JSON, str(exc)) from None
    if _SURROGATE_ESCAPE_RE.search(text):
        # JSON may escape a lone surrogate ("\ud800"); no UTF-8 text can hold the result.
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPayload(Reason.NOT_UTF8, "lone surrogate in a \\u escape") from None
    if not isinstance(data, dict):
        raise InvalidPayload(Reason.NOT_AN_OBJECT, f"top level is {type(data).__name__}")
    return data
