"""The simulated reader fed through a named pipe (`sim:fifo=`), as a technician uses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.readers import open_reader


def test_fifo_lines_become_taps_bad_lines_skipped(tmp_path: Path) -> None:
    pipe = tmp_path / "run" / "taps"
    reader = open_reader(f"sim:fifo={pipe}")
    try:
        for chunk in (b"04a1b2c3\nnot-a-uid\n", b"04A1B2C4\n04A1", b"B2C5\n"):
            fd = os.open(pipe, os.O_WRONLY)  # each writer opens and closes, like `echo`
            os.write(fd, chunk)
            os.close(fd)
        got = [reader.poll(0.5) for _ in range(4)]
        assert got == ["04A1B2C3", "04A1B2C4", "04A1B2C5", None]
    finally:
        reader.close()


def test_fifo_path_that_is_not_a_pipe_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UnknownReaderSpec, match="named pipe"):
        open_reader(f"sim:fifo={tmp_path / 'file'}")
