"""Every `warmcard` help text renders whole: no word swallowed as console markup (a `[mqtt]`
in a help string is a markup tag to the renderer unless escaped)."""

from __future__ import annotations

import re
from typing import Any

import typer.main
from typer.testing import CliRunner

from warmcard.command.cli import app

BRACKETED = re.compile(r"\\?\[([a-z_]+)\]")


def commands() -> list[tuple[list[str], Any]]:
    """(argv path, command) of every command and group, the root included."""
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return found


def test_every_bracketed_word_of_every_help_text_is_shown() -> None:
    runner = CliRunner()
    checked = 0
    for path, command in commands():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        words = [w for text in texts for w in BRACKETED.findall(text)]
        if not words:
            continue
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        flat = " ".join(shown.output.replace("│", " ").split())
        for word in words:
            assert f"[{word}]" in flat, (path, word)
            checked += 1
    assert checked >= 2  # reconcile's [mqtt] and restore's [influx] at least


def test_no_help_text_has_a_hole() -> None:
    """Two spaces inside a sentence are where markup ate a word ("TOML with the  of ...")."""
    runner = CliRunner()
    for path, _ in commands():
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, (path, shown.output)
        for line in shown.output.splitlines():
            text = line.strip("│ ").strip()
            assert not re.search(r"[a-z,]  [a-z]", text), (path, line)
