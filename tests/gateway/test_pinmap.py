"""The pin map: validation, the package's copy, and the docs' wiring table agreeing with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_gateway.pinmap import (
    HEADER_PIN,
    PinmapError,
    default_pinmap_path,
    load_pinmap,
    parse_pinmap,
)
from tests.support.paths import REPO

PINMAP = REPO / "hardware" / "pinmap.toml"
README = REPO / "hardware" / "README.md"


def readme_table() -> str:
    match = re.search(
        r"<!-- pinmap:begin -->\n(.*?)\n<!-- pinmap:end -->", README.read_text(), re.S
    )
    assert match, "hardware/README.md lost its pinmap:begin/end markers"
    return match.group(1)


def test_readme_wiring_table_is_the_generated_one() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "firmware_gateway.pinmap", "--markdown", str(PINMAP)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert readme_table() == generated, (
        "hardware/README.md's wiring table differs from hardware/pinmap.toml; regenerate it with "
        "`python -m firmware_gateway.pinmap --markdown`"
    )


def test_readme_rows_match_pinmap_pin_for_pin() -> None:
    # Independent of the generator: read the rows back and compare with the parsed file.
    pinmap = load_pinmap(PINMAP)
    rows = {}
    for line in readme_table().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        role_match = re.search(r"`(\w+)`", cells[0])
        assert role_match, line
        role = role_match.group(1)
        rows[role] = (int(cells[1].removeprefix("GPIO")), int(cells[2]))
    assert rows == {role: (pin.bcm, pin.header_pin) for role, pin in pinmap.pins.items()}


def test_shipped_pinmap_is_the_repo_one() -> None:
    assert default_pinmap_path().read_bytes() == PINMAP.read_bytes()
    pinmap = load_pinmap()
    assert {r: p.bcm for r, p in pinmap.pins.items()} == {
        "green_led": 17,
        "red_led": 27,
        "buzzer": 22,
        "relay": 23,
        "uart_txd": 14,
        "uart_rxd": 15,
        "pn532_reset": 20,
    }
    assert pinmap["relay"].active_high is False
    assert pinmap["green_led"].header_pin == 11


def test_header_pin_table_is_a_bijection_on_the_40_pin_header() -> None:
    assert sorted(HEADER_PIN) == list(range(2, 28))
    assert len(set(HEADER_PIN.values())) == len(HEADER_PIN)
    assert all(1 <= pin <= 40 for pin in HEADER_PIN.values())


MINIMAL = {"green_led": {"bcm": 17}, "red_led": {"bcm": 27}, "buzzer": {"bcm": 22}}


def test_minimal_pinmap_without_optional_roles() -> None:
    pinmap = parse_pinmap(MINIMAL)
    assert pinmap.get("relay") is None
    assert pinmap["buzzer"].active_high is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"relay": {"bcm": 17}}, r"GPIO17 is used twice, by \[green_led\] and \[relay\]"),
        ({"buzzer": {"bcm": 28}}, r"\[buzzer\] bcm = 28 is not a usable BCM GPIO"),
        ({"buzzer": {"bcm": 0}}, r"bcm = 0 is not a usable"),
        ({"buzzer": {"bcm": -3}}, r"bcm = -3 is not a usable"),
        ({"buzzer": {"bcm": "22"}}, r"bcm = '22' is not a usable"),
        ({"buzzer": {"bcm": True}}, r"bcm = True is not a usable"),
        ({"buzzer": {}}, r"bcm = None is not a usable"),
        ({"door": {"bcm": 5}}, r"unknown role \[door\]"),
        ({"buzzer": {"bcm": 22, "pull": "up"}}, r"\[buzzer\] has unknown keys \['pull'\]"),
        ({"buzzer": 22}, r"\[buzzer\] must be a table"),
        ({"relay": {"bcm": 23, "active_high": "no"}}, r"active_high true/false"),
    ],
)
def test_validation_errors_name_the_role(change: dict[str, object], message: str) -> None:
    with pytest.raises(PinmapError, match=message):
        parse_pinmap({**MINIMAL, **change})


def test_missing_required_role() -> None:
    with pytest.raises(PinmapError, match=r"missing required roles \['buzzer'\]"):
        parse_pinmap({"green_led": {"bcm": 17}, "red_led": {"bcm": 27}})


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(PinmapError, match="cannot read pin map"):
        load_pinmap(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[green_led\nbcm = 17\n")
    with pytest.raises(PinmapError, match="not valid TOML"):
        load_pinmap(bad)
