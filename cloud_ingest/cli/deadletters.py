"""`warmcard deadletter list|show|stats`: read the dead-letter store named in ingest.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cloud_ingest.db import is_url
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from warmcard.settings import SettingsError

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output")]


def _open_store(config: Path | None) -> DeadLetterStore:
    from cloud_ingest.settings import IngestSettings

    try:
        settings = IngestSettings.load(config)
    except SettingsError as exc:
        typer.echo(f"配置错误 Config error: {exc}", err=True)
        raise typer.Exit(2) from None
    where = settings.store("deadletters")
    if not is_url(where) and not Path(where).exists():
        typer.echo(f"没有死信库 No dead-letter store at {where} (nothing rejected yet?)", err=True)
        raise typer.Exit(2)
    return DeadLetterStore(where)


def register(app: typer.Typer) -> None:
    """Add `warmcard deadletter ...`."""
    group = typer.Typer(help="死信 Dead letters: rejected messages, kept for inspection.")
    app.add_typer(group, name="deadletter")

    @group.command("list")
    def list_(
        config: ConfigOption = None,
        reason: Annotated[str | None, typer.Option("--reason", help="e.g. conflict")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=100000)] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """Newest first: id, time, reason, topic, detail."""
        from cloud_ingest.ops.payload_view import payload_json
        from warmcard.rejections import Reason
        from warmcard.timestamps import format_ts

        if reason is not None and reason not in {r.value for r in Reason}:
            known = ", ".join(r.value for r in Reason)
            typer.echo(f"未知原因 Unknown reason {reason!r}; one of: {known}", err=True)
            raise typer.Exit(2)
        store = _open_store(config)
        try:
            letters = store.list(limit=limit, reason=reason)
        finally:
            store.close()
        if as_json:
            docs = []
            for d in letters:
                doc = d.as_json()
                doc["payload"] = payload_json(d.payload)
                docs.append(doc)
            typer.echo(json.dumps(docs, ensure_ascii=False, indent=1))
            return
        if not letters:
            typer.echo("没有死信 No dead letters")
            return
        for d in letters:
            detail = d.detail if d.detail.isprintable() else ascii(d.detail)
            typer.echo(
                f"{d.id}\t{format_ts(d.received_us)}\t{d.reason.value}\t"
                f"{ascii(d.topic)[1:-1]}\t{detail}"
            )

    @group.command("show")
    def show(
        letter_id: Annotated[int, typer.Argument(help="id from `deadletter list`")],
        config: ConfigOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """One dead letter with its payload (text if printable, else a hex dump)."""
        from cloud_ingest.ops.payload_view import hex_dump, payload_json, printable_text
        from warmcard.timestamps import format_ts

        store = _open_store(config)
        try:
            letter = store.get(letter_id)
        finally:
            store.close()
        if letter is None:
            typer.echo(f"没有这条死信 No dead letter {letter_id}", err=True)
            raise typer.Exit(1)
        if as_json:
            doc = letter.as_json()
            doc["payload"] = payload_json(letter.payload)
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))
            return
        text = printable_text(letter.payload)
        typer.echo(f"编号 id:        {letter.id}")
        typer.echo(f"收到 received:  {format_ts(letter.received_us)}")
        typer.echo(f"主题 topic:     {ascii(letter.topic)[1:-1]}")
        typer.echo(f"原因 reason:    {letter.reason.value}")
        detail = letter.detail if letter.detail.isprintable() else ascii(letter.detail)
        typer.echo(f"说明 detail:    {detail}")
        if text is not None:
            typer.echo(f"内容 payload ({len(letter.payload)} bytes, text):")
            typer.echo(text)
        else:
            typer.echo(f"内容 payload ({len(letter.payload)} bytes, hex):")
            typer.echo(hex_dump(letter.payload))

    @group.command("stats")
    def stats(config: ConfigOption = None, as_json: JsonOption = False) -> None:
        """Counts by reason."""

        store = _open_store(config)
        try:
            counts = store.counts()
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps(counts, sort_keys=True))
            return
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            typer.echo(f"{reason}\t{n}")
        typer.echo(f"合计 total\t{sum(counts.values())}")
