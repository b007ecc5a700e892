"""The import rules in pyproject.toml hold, and each one fails when its wrong arrow comes back.

For every contract, one import that breaks it is written into a copy of the tree, and
`lint-imports` must then report exactly that contract broken (and pass again without it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

# contract name -> (module file, the import that breaks it)
WRONG_ARROWS: dict[str, tuple[str, str]] = {
    "The wire contract and shared leaves import no part of the product": (
        "warmcard/ids.py",
        "import cloud_ingest.db",
    ),
    "Only the command, tests and benches import warmcard.command": (
        "cloud_ingest/ops/resend.py",
        "import warmcard.command.pki",
    ),
    "The Pi and the cloud are independent: they share only warmcard's leaves": (
        "cloud_ingest/pipeline/lineprotocol.py",
        "import firmware_gateway.errors",
    ),
    "The cloud never imports the kiosk application": (
        "cloud_ingest/console/exports.py",
        "import kiosk.errors",
    ),
    "Cloud layers: commands, web, service|worker, settings, console|ops, alerts, pipeline, "
    "registry, leaves": ("cloud_ingest/pipeline/live.py", "import cloud_ingest.console.overview"),
    "Pi side: the kiosk (application) sits on the gateway (edge), never the other way": (
        "firmware_gateway/outbox.py",
        "import kiosk.errors",
    ),
    "Pi side knows nothing of the cloud or of the warmcard command": (
        "kiosk/screen.py",
        "import warmcard.command.servers",
    ),
    "Kiosk policy is pure: no other kiosk part, no gateway": (
        "kiosk/policy/rules.py",
        "import kiosk.cache",
    ),
    "Kiosk policy is pure: no I/O, threads or clock reads of its own": (
        "kiosk/policy/rules.py",
        "import threading",
    ),
    "Kiosk parts, top to bottom": ("kiosk/voice.py", "import kiosk.runtime"),
    "Gateway parts, top to bottom": (
        "firmware_gateway/outbox.py",
        "import firmware_gateway.uplink",
    ),
    "Drivers know nothing of MQTT, the outbox or the uplink": (
        "firmware_gateway/readers/sim.py",
        "import paho.mqtt.client",
    ),
    "The running kiosk imports the reader interface, not the drivers": (
        "kiosk/runtime.py",
        "import firmware_gateway.readers.pn532",
    ),
    "Web: app, routes, dependencies, the helpers they use, schemas and login": (
        "cloud_ingest/web/render.py",
        "import cloud_ingest.web.deps",
    ),
    "Web: route modules are independent of each other": (
        "cloud_ingest/web/routes/health.py",
        "import cloud_ingest.web.routes.metrics",
    ),
}


def contract_names() -> list[str]:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = text[text.index("[tool.importlinter]") :]
    return re.findall(r'^name = "(.*)"$', section, flags=re.M)


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "pyproject.toml"],
        cwd=tree,
        # Wide enough that no contract's name wraps in the report.
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def broken(output: str) -> set[str]:
    """The contracts the report's summary lines call BROKEN."""
    lines = {line.strip() for line in output.splitlines()}
    return {name for name in WRONG_ARROWS if f"{name} BROKEN" in lines}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in ("warmcard", "firmware_gateway", "kiosk", "cloud_ingest", "tests", "bench"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.png")
        )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_every_contract_has_a_wrong_arrow_here() -> None:
    assert sorted(contract_names()) == sorted(WRONG_ARROWS)


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("contract", sorted(WRONG_ARROWS))
def test_the_wrong_arrow_breaks_its_contract(tree: Path, contract: str) -> None:
    module, line = WRONG_ARROWS[contract]
    path = tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{line}  # noqa\n", encoding="utf-8")
    try:
        result = lint(tree)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert contract in broken(result.stdout), result.stdout


def test_every_leaf_of_warmcard_is_held_to_the_leaf_rule() -> None:
    """A new module in warmcard/ (outside the command) joins the leaf contract, or this fails."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    start = text.index('name = "The wire contract and shared leaves import no part of the product"')
    listed = set(re.findall(r'"(warmcard\.[a-z_]+)"', text[start : text.index("]", start)]))
    modules = {
        f"warmcard.{p.stem}"
        for p in (REPO / "warmcard").glob("*.py")
        if p.stem not in {"__init__", "__main__"}
    }
    assert modules == listed
