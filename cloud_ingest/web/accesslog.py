"""The access log without personal data: no query strings, no card numbers in paths.

uvicorn logs every request as `client - "METHOD /path?query HTTP/1.1" status`. A search by name
(`?q=杨桂英`), a card typed into the parser (`?text=04:A1:B2:C3`) and a card's own page
(`/registry/cards/04A1B2C3`) would put names and card numbers into journald, which outlives an
erasure and is copied for support. Person ids are pseudonymous and stay: they say which
record was asked for without saying whose it is.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"

# A card number follows `cards/` in every path that carries one.
_CARD_IN_PATH = re.compile(r"(/cards/)[^/?#]+")


def redact_path(path: str) -> str:
    """`path` without its query string and with card numbers replaced by `{card}`."""
    bare = path.split("?", 1)[0]
    return _CARD_IN_PATH.sub(r"\1{card}", bare)


class AccessLogPrivacy(logging.Filter):
    """Rewrites uvicorn's access records in place (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_path(args[2]), args[3], args[4])
        return True


def install() -> None:
    """Put the filter on uvicorn's access logger, once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogPrivacy) for f in logger.filters):
        logger.addFilter(AccessLogPrivacy())
