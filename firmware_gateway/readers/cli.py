"""Technician commands for readers: `warmcard emulate-pn532` and `warmcard read-cards`."""

from __future__ import annotations

import sys

import typer


def register_reader_commands(app: typer.Typer) -> None:
    """Add the reader commands to the `warmcard` app."""

    @app.command("emulate-pn532")
    def emulate_pn532(
        baud: int = typer.Option(115200, help="Paced UART speed 模拟波特率"),
        uid: str | None = typer.Option(None, help="Card to present at start 启动时放的卡"),
    ) -> None:
        """模拟 PN532 读卡器 Emulate a PN532 on a pseudo-terminal, for use without hardware."""
        from firmware_gateway.pn532.emulator import CONSOLE_HELP, PN532Emulator, run_console

        with PN532Emulator(baudrate=baud) as emu:
            typer.echo(emu.path)  # first line: the path, for scripts
            typer.echo(
                f"读卡器 Reader: pn532:{emu.path}  或 or  libnfc:pn532_uart:{emu.path}:{baud}",
                err=True,
            )
            typer.echo(CONSOLE_HELP, err=True)
            if uid:
                emu.present(uid)
            run_console(emu, sys.stdin, lambda text: typer.echo(text, err=True))

    @app.command("read-cards")
    def read_cards(
        reader: str = typer.Argument(
            ..., help="e.g. pn532:/dev/serial0, libnfc:pn532_uart:/dev/ttyUSB0"
        ),
        count: int = typer.Option(0, help="Stop after this many taps (0: run until Ctrl-C)"),
    ) -> None:
        """读卡测试：每次刷卡打印卡号 Print each tap's UID and the reader's state changes."""
        from firmware_gateway.readers import open_reader, read_taps

        r = open_reader(reader)
        try:
            read_taps(
                r,
                count,
                typer.echo,
                lambda state: typer.echo(f"读卡器状态 Reader state: {state.value}", err=True),
            )
        finally:
            r.close()
