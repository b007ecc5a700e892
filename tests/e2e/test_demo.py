"""`warmcard demo`, the README's main command: servers, ingest, kiosks, a console that fills,
with elders living alone due a visit from the start."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.console import logged_in
from tests.support.ingest import wait_for


def test_demo_runs_the_whole_pipeline_and_the_console_fills(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    command = [sys.executable, "-m", "warmcard", "demo", "--duration", "45", "--sites", "3"]
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [*command, "--run-dir", str(tmp_path / "demo")], stdout=sink, stderr=subprocess.STDOUT
        )
    try:

        def printed() -> tuple[str, str] | None:
            assert proc.poll() is None, out.read_text()
            text = out.read_text()
            url = re.search(r"(http://127\.0\.0\.1:\d+)/login", text)
            password = re.search(r"username demo-admin\s+密码 password (\S+)", text)
            return (url.group(1), password.group(1)) if url and password else None

        url, password = wait_for(printed, timeout=90, interval=0.5)
        client = logged_in(url, "demo-admin", password)
        try:

            def arrivals() -> int:
                sites = client.get("/api/v1/occupancy").json()["sites"]
                assert len(sites) == 3
                return sum(int(site["arrivals"]) for site in sites)

            # The simulated kiosks get their config and roster from ingest, then start tapping.
            wait_for(arrivals, timeout=60, interval=1)
            devices = client.get("/api/v1/occupancy").json()["sites"][0]["devices"]
            assert {d["state"] for d in devices} == {"online"}
            # Two elders living alone per site stay home: due a visit, phone and address shown.
            due = wait_for(lambda: client.get("/api/v1/visits/due").json()["due"], timeout=30)
            assert len({d["site_id"] for d in due}) == 3 and len(due) == 6
            assert all(d["days"] >= 3 and d["phone"].startswith("138") for d in due)
            assert all(d["address"] for d in due)
            assert all(d["last_seen_at"] is None for d in due)  # the simulator kept them home
        finally:
            client.close()
    finally:
        assert proc.wait(timeout=90) == 0, out.read_text()  # --duration ends it cleanly
    assert "已停止 Stopped." in out.read_text()
