"""What a name shown to people (a site, an area, a person) may hold: one line of visible text.

A NUL or an escape sequence in a site name reaches every page, CSV and XLSX export and terminal
that shows it; a bidi override (U+202E) shows a name reversed; zero-width characters make two
different names look the same.
"""

from __future__ import annotations

import unicodedata

from cloud_ingest.i18n import Said

# Cc: C0 and C1 controls, NUL, DEL; Cf: format characters (bidi overrides, zero-width ones);
# Cs: lone surrogates; Zl, Zp: line and paragraph separators. Private-use characters stay
# allowed: older systems put rare characters of people's names there.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def name_problem(name: str, max_len: int) -> Said | None:
    """What is wrong with `name` (English, for `file:line: problem` reports), or None if fine."""
    if not name:
        return Said("name_empty")
    if len(name) > max_len:
        return Said("name_too_long", max_len=max_len)
    for c in name:
        if unicodedata.category(c) in REFUSED_CATEGORIES:
            return Said("name_invisible", code=f"{ord(c):04X}")
    return None


def initials(name: str) -> str:
    """Pinyin initials of a name's Chinese characters, lower case ('张秀英' -> 'zxy'); other
    letters and digits kept as they are, so a search box can match '张秀英' by typing 'zxy'."""
    # Imported here: pypinyin loads its dictionaries (a few MB) on first use, and only the
    # pages that search people by initials need them.
    from pypinyin import Style, lazy_pinyin

    # One letter per Chinese character; any other run (Latin, digits) comes back whole.
    parts = lazy_pinyin(name, style=Style.FIRST_LETTER, errors=lambda s: s)
    return "".join(c for part in parts for c in part if c.isalnum()).lower()
