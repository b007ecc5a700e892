"""Untrusted payload bytes shown safely: printable text as is, anything else as a hex dump."""

from __future__ import annotations


def printable_text(payload: bytes) -> str | None:
    """The payload as text if it is UTF-8 without control, format or escape characters."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # isprintable() is False for ESC (terminal escapes), other controls, bidi overrides (Cf)
    # and lone surrogates, so nothing in the text can rewrite the operator's screen.
    return text if text.isprintable() else None


def hex_dump(payload: bytes, width: int = 16) -> str:
    """`offset  hex bytes  |ascii|`, one line per `width` bytes."""
    lines = []
    for offset in range(0, len(payload), width):
        chunk = payload[offset : offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<{width * 3 - 1}}  |{ascii_}|")
    return "\n".join(lines)


def payload_json(payload: bytes) -> dict[str, object]:
    """For JSON output: `text` when printable, else `hex` (the bytes in hex)."""
    text = printable_text(payload)
    if text is not None:
        return {"size": len(payload), "text": text}
    return {"size": len(payload), "hex": payload.hex()}
