# mypy: allow-untyped-defs
"""`warmcard deadletter list|show|stats` and GET /api/v1/deadletters on a real store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cloud_ingest.ops.payload_view import hex_dump
from cloud_ingest.pipeline.deadletter import DeadLetter, DeadLetterStore
from tests.support.console import operator_client
from tests.support.ingest import make_settings
from tests.support.stack import Stack
from warmcard.command.cli import app
from warmcard.rejections import Reason

TEXT = b'{"v":1,"device_id":"k-1","seq":7}'
# Terminal escapes (clear screen, set title) and invalid UTF-8: must never reach a terminal raw.
HOSTILE = b"\x1b[2J\x1b]0;pwned\x07\xff\xfe ok"


def seed(path) -> list[int]:
    store = DeadLetterStore(path)
    try:
        store.add_many(
            [
                DeadLetter(
                    1_790_000_000_000_000,
                    "warmcard/v1/devices/k-1/events",
                    TEXT,
                    Reason.CONFLICT,
                    "seq 7 of k-1 seen before with other content",
                ),
                DeadLetter(
                    1_790_000_001_000_000,
                    "warmcard/v1/devices/k-1/events",
                    HOSTILE,
                    Reason.NOT_UTF8,
                    "bad byte",
                ),
                DeadLetter(
                    1_790_000_002_000_000,
                    "warmcard/v1/devices/k-2/events",
                    b"[]",
                    Reason.NOT_AN_OBJECT,
                    "top level is list",
                ),
            ]
        )
        return [d.id for d in store.list()]  # type: ignore[misc]
    finally:
        store.close()


def write_config(tmp_path) -> str:
    path = tmp_path / "ingest.toml"
    path.write_text(
        f'deadletter_path = "{tmp_path / "dl.sqlite3"}"\n'
        f'registry_path = "{tmp_path / "registry.sqlite3"}"\n'
    )
    return str(path)


def test_list_show_stats(tmp_path):
    config = write_config(tmp_path)
    newest_first = seed(tmp_path / "dl.sqlite3")
    runner = CliRunner()

    listed = runner.invoke(app, ["deadletter", "list", "--config", config])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == newest_first
    assert [line.split("\t")[2] for line in lines] == ["not_an_object", "not_utf8", "conflict"]

    only = runner.invoke(
        app, ["deadletter", "list", "--config", config, "--reason", "conflict", "--json"]
    )
    docs = json.loads(only.stdout)
    assert [d["reason"] for d in docs] == ["conflict"]
    assert docs[0]["payload"] == {"size": len(TEXT), "text": TEXT.decode()}
    limited = runner.invoke(app, ["deadletter", "list", "--config", config, "--limit", "1"])
    assert len(limited.stdout.strip().splitlines()) == 1

    text_id, hostile_id = newest_first[2], newest_first[1]
    shown = runner.invoke(app, ["deadletter", "show", str(text_id), "--config", config])
    assert shown.exit_code == 0 and TEXT.decode() in shown.stdout and "text" in shown.stdout
    hostile = runner.invoke(app, ["deadletter", "show", str(hostile_id), "--config", config])
    assert hostile.exit_code == 0
    assert "\x1b" not in hostile.stdout and "\x07" not in hostile.stdout
    assert hex_dump(HOSTILE) in hostile.stdout
    assert "1b 5b 32 4a" in hostile.stdout
    as_json = json.loads(
        runner.invoke(
            app, ["deadletter", "show", str(hostile_id), "--config", config, "--json"]
        ).stdout
    )
    assert bytes.fromhex(as_json["payload"]["hex"]) == HOSTILE and "text" not in as_json["payload"]

    stats = runner.invoke(app, ["deadletter", "stats", "--config", config, "--json"])
    assert json.loads(stats.stdout) == {"conflict": 1, "not_utf8": 1, "not_an_object": 1}
    plain = runner.invoke(app, ["deadletter", "stats", "--config", config])
    assert "合计 total\t3" in plain.stdout

    assert runner.invoke(app, ["deadletter", "show", "999", "--config", config]).exit_code == 1
    bad = runner.invoke(app, ["deadletter", "list", "--config", config, "--reason", "nonsense"])
    assert bad.exit_code == 2 and "conflict" in bad.stderr


def test_missing_store_is_a_clear_error(tmp_path):
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["deadletter", "stats", "--config", config])
    assert result.exit_code == 2 and "No dead-letter store" in result.stderr
    assert not (tmp_path / "dl.sqlite3").exists()  # looking does not create it


def test_api_deadletters(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    settings = make_settings(
        tmp_path,
        mosquitto,
        influxd,
        influx_db,
        topic_prefix,
        deadletter_path=tmp_path / "dl.sqlite3",
    )
    ids = seed(tmp_path / "dl.sqlite3")
    service = Stack(settings)
    try:
        client = operator_client(service)  # no lifespan: nothing to consume
        body = client.get("/api/v1/deadletters").json()
        assert body["counts"] == {"conflict": 1, "not_utf8": 1, "not_an_object": 1}
        assert [d["id"] for d in body["letters"]] == ids
        hostile = next(d for d in body["letters"] if d["reason"] == "not_utf8")
        assert hostile["payload"] == {"size": len(HOSTILE), "hex": HOSTILE.hex()}
        only = client.get("/api/v1/deadletters", params={"reason": "conflict"}).json()
        assert [d["reason"] for d in only["letters"]] == ["conflict"]
        assert client.get("/api/v1/deadletters", params={"reason": "nope"}).status_code == 422
        one = client.get(f"/api/v1/deadletters/{ids[-1]}").json()
        assert one["payload"]["text"] == TEXT.decode()
        assert client.get("/api/v1/deadletters/999").status_code == 404
    finally:
        service.stop()
