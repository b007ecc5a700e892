"""Card numbers: the canonical UID, what keyboard-wedge readers type, what people paste.

The canonical UID is upper-case hex without separators (warmcard.ids.CARD_UID_RE): 4, 7 or 10
bytes. Every way a card number reaches Warmcard ends here.

=============  ===========================  ==================================================
printed        example                      canonical UID
=============  ===========================  ==================================================
10 digits      ``3283263748``               the decimal value of the 4-byte UID, taken in
                                            ``order``: le (default) 0xC3B2A104 → 04A1B2C3,
                                            be → C3B2A104
8 hex digits   ``C3B2A104``                 the same 32-bit number written in hex, then the
                                            same ``order`` rule (le → 04A1B2C3)
3+5 digits     ``178 41220`` (W26: facility  facility << 16 | number, a 24-bit number treated
(format=w26)   then card number; typed as   like the 10-digit value (so the top UID byte is
               ``17841220``)                00 and lost: register such cards with such readers)
14 / 20 hex    ``04112233445566``           a 7 / 10-byte UID: as typed for be, byte-reversed
                                            for le
=============  ===========================  ==================================================

8 decimal digits are read as hex unless ``format=w26`` is set; ``format=dec10`` / ``hex``
accept only that form.
"""

from __future__ import annotations

import re

from warmcard.errors import WarmcardError
from warmcard.ids import CARD_UID_RE

ORDERS = ("le", "be")
FORMATS = ("auto", "dec10", "hex", "w26")
UID_SEPARATORS = re.compile(r"[\s:\-]")
_HEX_PREFIX = re.compile(r"^0[xX]")


class BadCardNumber(WarmcardError, ValueError):
    """Text that is not a card number in an accepted format; the message says which forms are."""


def canonical_uid(text: str) -> str:
    """`04:a1:b2:c3` -> `04A1B2C3`; raises BadCardNumber unless 4, 7 or 10 bytes of hex."""
    uid = UID_SEPARATORS.sub("", text).upper()
    if not CARD_UID_RE.fullmatch(uid):
        raise BadCardNumber(f"card_uid {text!r} is not 4, 7 or 10 bytes of hex (e.g. 04A1B2C3)")
    return uid


def to_uid(text: str, order: str = "le", fmt: str = "auto") -> str:
    """The canonical UID for what a wedge reader typed; raises BadCardNumber."""
    t = text.strip().upper()
    is_hex = all(c in "0123456789ABCDEF" for c in t) and t != ""
    is_dec = t.isdigit()
    if not is_hex:
        raise BadCardNumber(f"not a card number: {text!r}")
    if len(t) == 10 and is_dec and fmt in ("auto", "dec10"):
        value = int(t)
        if value > 0xFFFFFFFF:
            raise BadCardNumber(f"10-digit number {t} exceeds 32 bits")
        return _number_to_uid(value, order)
    if len(t) == 8 and fmt == "w26":
        if not is_dec or int(t[:3]) > 0xFF or int(t[3:]) > 0xFFFF:
            raise BadCardNumber(f"not a W26 facility+number: {t}")
        return _number_to_uid((int(t[:3]) << 16) | int(t[3:]), order)
    if len(t) == 8 and fmt in ("auto", "hex"):
        return _number_to_uid(int(t, 16), order)
    if len(t) in (14, 20) and fmt in ("auto", "hex"):
        raw = bytes.fromhex(t)
        return (raw[::-1] if order == "le" else raw).hex().upper()
    raise BadCardNumber(f"{len(t)} characters {t!r} match no accepted format ({fmt})")


def _number_to_uid(value: int, order: str) -> str:
    return value.to_bytes(4, "little" if order == "le" else "big").hex().upper()


def from_uid(uid: str, order: str = "le", fmt: str = "dec10") -> str:
    """What a wedge reader in this format would type for a card: the inverse of `to_uid`."""
    raw = bytes.fromhex(uid)
    if len(raw) != 4:
        return (raw[::-1] if order == "le" else raw).hex().upper()
    value = int.from_bytes(raw, "little" if order == "le" else "big")
    if fmt == "w26":
        return f"{(value >> 16) & 0xFF:03d}{value & 0xFFFF:05d}"
    if fmt == "hex":
        return f"{value:08X}"
    return f"{value:010d}"


def uid_from_text(text: str, order: str = "le") -> str:
    """The canonical UID for what a person typed or pasted; raises BadCardNumber.

    Accepted: the UID in hex as a reader shows it (4, 7 or 10 bytes, any case, with or without
    `:`, `-` or spaces, optional 0x), and the 10-digit decimal number printed on many cards,
    read like a keyboard-wedge reader in `order` (le by default: 3283263748 → 04A1B2C3).
    """
    t = _HEX_PREFIX.sub("", text.strip())
    if not t:
        raise BadCardNumber("卡号为空 card number is empty")
    digits = UID_SEPARATORS.sub("", t)
    if len(digits) == 10 and digits.isdigit():
        try:
            return to_uid(digits, order=order, fmt="dec10")
        except BadCardNumber as exc:
            raise BadCardNumber(f"卡号无效 {exc}") from None
    try:
        return canonical_uid(t)
    except BadCardNumber as exc:
        raise BadCardNumber(
            f"卡号无效 {exc}; or the 10-digit number printed on the card (e.g. 3283263748)"
        ) from None
