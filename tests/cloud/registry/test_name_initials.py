"""Pinyin initials for the enrol page's search: one letter per Chinese character."""

from __future__ import annotations

import pytest

from cloud_ingest.registry.names import initials


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("张秀英", "zxy"),
        ("欧阳春华", "oych"),
        ("李 Wei2", "lwei2"),  # Latin letters and digits kept, spaces dropped
        ("P0007", "p0007"),
        ("", ""),
    ],
)
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected
