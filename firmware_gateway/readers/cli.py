"""Technician commands for readers: `warmcard emulate-pn532` and `warmcard read-cards`."""

from __future__ import annotations

import sys

import typer

HELP = (
    "命令 Commands: present <UID> | remove | garble | silent | back | quit\n"
    "  present 04A1B2C3   放卡 card on the reader\n"
    "  remove             拿开 card off the reader\n"
    "  garble             下一帧出错 next response garbled\n"
    "  silent / back      读卡器无响应 / 恢复 reader stops answering / comes back"
)


def register_reader_commands(app: typer.Typer) -> None:
    """Add the reader commands to the `warmcard` app."""

    @app.command("emulate-pn532")
    def emulate_pn532(
        baud: int = typer.Option(115200, help="Paced UART speed 模拟波特率"),
        uid: str | None = typer.Option(None, help="Card to present at start 启动时放的卡"),
    ) -> None:
        """模拟 PN532 读卡器 Emulate a PN532 on a pseudo-terminal, for use without hardware."""
        from firmware_gateway.pn532.emulator import PN532Emulator

        with PN532Emulator(baudrate=baud) as emu:
            typer.echo(emu.path)  # first line: the path, for scripts
            typer.echo(
                f"读卡器 Reader: pn532:{emu.path}  或 or  libnfc:pn532_uart:{emu.path}:{baud}",
                err=True,
            )
            typer.echo(HELP, err=True)
            if uid:
                emu.present(uid)
            for line in sys.stdin:
                words = line.split()
                if not words:
                    continue
                verb = words[0].lower()
                try:
                    if verb == "present" and len(words) == 2:
                        emu.present(words[1])
                    elif verb == "remove":
                        emu.remove()
                    elif verb == "garble":
                        emu.garble_next()
                    elif verb == "silent":
                        emu.go_silent()
                    elif verb == "back":
                        emu.come_back()
                    elif verb in ("quit", "exit"):
                        break
                    else:
                        typer.echo(HELP, err=True)
                        continue
                except ValueError as exc:
                    typer.echo(f"卡号无效 Bad UID: {exc}", err=True)
                    continue
                typer.echo("好 OK", err=True)

    @app.command("read-cards")
    def read_cards(
        reader: str = typer.Argument(
            ..., help="e.g. pn532:/dev/serial0, libnfc:pn532_uart:/dev/ttyUSB0"
        ),
        count: int = typer.Option(0, help="Stop after this many taps (0: run until Ctrl-C)"),
    ) -> None:
        """读卡测试：每次刷卡打印卡号 Print each tap's UID and the reader's state changes."""
        from firmware_gateway.readers import open_reader

        r = open_reader(reader)
        seen, last_state = 0, None
        try:
            while count == 0 or seen < count:
                uid = r.poll(0.5)
                if r.state != last_state:
                    last_state = r.state
                    typer.echo(f"读卡器状态 Reader state: {r.state.value}", err=True)
                if uid is not None:
                    seen += 1
                    typer.echo(uid)
        except KeyboardInterrupt:
            pass
        finally:
            r.close()
