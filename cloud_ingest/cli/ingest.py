"""`warmcard ingest` (a worker), `warmcard console` (the console) and `warmcard import`."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cloud_ingest.cli.config import load_settings
from warmcard.settings import SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI


def _clean_exit_server() -> type:
    import uvicorn

    class CleanExitServer(uvicorn.Server):
        """Exit 0 after a graceful shutdown (uvicorn re-raises the signal, exiting -15)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            signals = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return CleanExitServer


def _serve(app: FastAPI, host: str, port: int, proxies: list[str] | None = None) -> None:
    """Serve until SIGTERM/Ctrl-C; open SSE streams would hold shutdown forever, hence the
    graceful timeout. `proxies`: the reverse proxies whose X-Forwarded-For is believed."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    _clean_exit_server()(config).run()


def register(app: typer.Typer) -> None:
    """Add `ingest`, `console` and `import` to the `warmcard` app."""

    @app.command("ingest")
    def ingest(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")] = None,
    ) -> None:
        """Run one ingest worker: consume, validate, store, ack; /healthz and /metrics only."""
        from cloud_ingest.web.worker_app import create_health_app
        from cloud_ingest.worker import IngestWorker

        settings = load_settings(config)
        # SIGTERM/Ctrl-C: the lifespan stops the consumer after the batch in hand (the
        # session and any unacked messages stay on the broker for the other workers).
        app_ = create_health_app(IngestWorker(settings))
        _serve(app_, settings.worker.host, settings.worker.port)

    @app.command("console")
    def console(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")] = None,
    ) -> None:
        """Run the console: pages, API and live streams, live state, alerts, device link."""
        from cloud_ingest.web.app import create_app

        settings = load_settings(config)
        api = settings.api
        _serve(create_app(settings), api.host, api.port, api.forwarded_allow_ips)

    @app.command("import")
    def import_(
        registry: Annotated[
            str, typer.Option("--registry", help="registry SQLite file or database URL")
        ],
        sites: Annotated[Path | None, typer.Option("--sites", help="sites.csv")] = None,
        devices: Annotated[Path | None, typer.Option("--devices", help="devices.csv")] = None,
        people: Annotated[Path | None, typer.Option("--people", help="people.csv")] = None,
        cards: Annotated[Path | None, typer.Option("--cards", help="cards.csv")] = None,
    ) -> None:
        """Import registry CSV files in one transaction, reporting every bad row."""
        from cloud_ingest.errors import ImportFailed, RegistryError
        from cloud_ingest.registry.importer import import_csv
        from cloud_ingest.registry.store import Registry

        if not any((sites, devices, people, cards)):
            typer.echo(
                "没有文件 Nothing to import: give --sites/--devices/--people/--cards", err=True
            )
            raise typer.Exit(2)
        try:
            reg = Registry(registry)
        except RegistryError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(
            TextColumn("检查并写入 Checking and writing"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = bar.add_task("import", total=None)
        try:
            with bar:
                summary = import_csv(
                    reg,
                    sites=sites,
                    devices=devices,
                    people=people,
                    cards=cards,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        except ImportFailed as exc:
            for file, line, problem in exc.problems:
                typer.echo(f"{file}:{line}: {problem}", err=True)
            typer.echo(
                f"导入失败，未写入任何数据 Import failed, nothing imported "
                f"({len(exc.problems)} problem(s))",
                err=True,
            )
            raise typer.Exit(1) from None
        finally:
            reg.close()
        counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
        typer.echo(f"已导入 Imported: {counts} (registry version {summary.version})")
        typer.echo(
            "运行中的 ingest 会在几秒内下发配置 Running ingest republishes config within seconds."
        )

    @app.command("report")
    def report(
        month: Annotated[str, typer.Option("--month", help="YYYY-MM, e.g. 2026-11")],
        area: Annotated[str, typer.Option("--area", help="area path, e.g. dali/xizhou; / = all")],
        out: Annotated[Path, typer.Option("--out", help="file to write")],
        fmt: Annotated[str, typer.Option("--format", help="xlsx or csv")] = "xlsx",
        config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")] = None,
        db: Annotated[
            str | None,
            typer.Option(
                "--db",
                envvar="WARMCARD_CONSOLE_DB",
                help="console store (areas): SQLite file or database URL; "
                "default: the config's console_db",
            ),
        ] = None,
    ) -> None:
        """Write the monthly report of an area: meals, attendance, distinct elders, visits."""
        from cloud_ingest.alerts.report_visits import AlertVisits
        from cloud_ingest.alerts.store import AlertStore
        from cloud_ingest.console import db as console_db
        from cloud_ingest.console.exports import write_csv, write_xlsx
        from cloud_ingest.console.reports import (
            DAILY_HEADER,
            csv_rows,
            monthly_report,
            xlsx_sheets,
        )
        from cloud_ingest.errors import ConsoleError, IngestError
        from cloud_ingest.pipeline.influx import InfluxV1
        from cloud_ingest.registry import areas
        from cloud_ingest.registry.store import Registry
        from cloud_ingest.settings import IngestSettings

        if fmt not in ("xlsx", "csv"):
            typer.echo("格式 --format must be xlsx or csv", err=True)
            raise typer.Exit(2)
        try:
            settings = IngestSettings.load(config)
            path = areas.parse_path(area)
            console = console_db.open_store(db or settings.store("console"))
            try:
                with console.read() as conn:
                    known = path == areas.ROOT or areas.get_area(conn, path) is not None
                    placed = areas.site_paths(conn)
            finally:
                console.close()
            if not known:
                typer.echo(f"未知区域 unknown area {path!r} (warmcard area list)", err=True)
                raise typer.Exit(1)
        except (SettingsError, ConsoleError) as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(2) from None
        registry = Registry(settings.store("registry"))
        storage = InfluxV1(settings.influx)
        try:
            inside = areas.sites_in(path, (s.site_id for s in registry.sites()), placed)
            sites = [s for s in map(registry.site, inside) if s is not None]
            visits = None
            if settings.database.url or settings.alerts_db_file.exists():
                visits = AlertVisits(AlertStore(settings.store("alerts")))
            else:
                typer.echo(
                    f"无探访记录库 no alerts database at {settings.alerts_db_file}: "
                    "visits made left out",
                    err=True,
                )
            result = monthly_report(storage, sites, path, month, visits)
        except IngestError as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            storage.close()
            registry.close()
            if visits is not None:
                visits.store.close()
        if fmt == "csv":
            write_csv(out, DAILY_HEADER, csv_rows(result))
        else:
            write_xlsx(out, xlsx_sheets(result))
        typer.echo(
            f"已生成 Written {out}: {len(result.sites)} site(s), meals {result.meals_total}, "
            f"distinct elders {result.elders_served}, visits "
            f"{'—' if result.visits is None else result.visits} ({result.generated_s:.2f} s)"
        )
