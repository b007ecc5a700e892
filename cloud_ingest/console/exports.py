"""Report files: CSV (UTF-8 with BOM, for Excel) and XLSX, with spreadsheet formulas neutralised.

Any text cell beginning with = + - @ tab or carriage return (the OWASP CSV-injection list) gets
a leading single quote, so a name typed as ``=HYPERLINK(...)`` is shown, never run. Numbers
are written as numbers: a real -3 stays -3. Aware datetimes are written in the site's zone;
naive ones are refused because nobody could tell which zone they meant.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from cloud_ingest.errors import ExportError
from warmcard import localtime

Cell = str | int | float | Decimal | date | datetime | bool | None

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


def neutralise(value: Cell) -> Cell:
    """Quote a text cell a spreadsheet would read as a formula; leave everything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _check_number(value: float | Decimal) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExportError(f"cannot export {value!r}: not a finite number")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ExportError(f"cannot export {value!r}: not a finite number")


def _local(value: datetime, tz: str | None) -> datetime:
    try:
        return localtime.to_local(value, tz)
    except ValueError as exc:
        raise ExportError(f"cannot export {value!r}: {exc}") from None


def csv_text(value: Cell, tz: str | None = None) -> str:
    """One cell as CSV text: neutralised strings, plain numbers, local times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        _check_number(value)
        return str(value)
    if isinstance(value, datetime):
        return _local(value, tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    neutral = neutralise(value)
    assert isinstance(neutral, str)
    return neutral


def iter_csv(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], tz: str | None = None
) -> Iterator[bytes]:
    """A CSV file as chunks of bytes, BOM first; suits a StreamingResponse for big reports."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # CRLF: what Excel itself writes
    yield "\ufeff".encode()  # the BOM makes Excel read the file as UTF-8, so 中文 shows
    writer.writerow([csv_text(h, tz) for h in header])
    for row in rows:
        if len(row) != len(header):
            raise ExportError(f"row has {len(row)} cells, header has {len(header)}: {row!r}")
        writer.writerow([csv_text(v, tz) for v in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def write_csv(
    out: Path | BinaryIO,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    tz: str | None = None,
) -> None:
    """Write a whole CSV file (UTF-8 with BOM, CRLF) to a path or binary stream."""
    if isinstance(out, Path):
        with out.open("wb") as f:
            f.writelines(iter_csv(header, rows, tz))
    else:
        out.writelines(iter_csv(header, rows, tz))


@dataclass(frozen=True)
class Sheet:
    """One worksheet of an XLSX report."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def _sheet_title(title: str, used: set[str]) -> str:
    # Excel refuses titles over 31 characters, with []:*?/\ or repeated.
    base = _SHEET_TITLE_BAD.sub("_", title).strip("'")[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def _xlsx_cell(ws: WriteOnlyWorksheet, value: Cell, tz: str | None, bold: bool = False) -> object:
    if isinstance(value, datetime):
        # Excel has no time zones: write the site's wall-clock time, formatted as such.
        cell = WriteOnlyCell(ws, value=_local(value, tz).replace(tzinfo=None))
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        _check_number(value)
        return value
    if isinstance(value, str):
        # XML 1.0 cannot carry most control characters; openpyxl would refuse the whole file.
        text = ILLEGAL_CHARACTERS_RE.sub("", str(neutralise(value)))
        cell = WriteOnlyCell(ws, value=text)
        # openpyxl guesses formulas ('=') and error codes ('#N/A') from text; this is text.
        cell.data_type = "s"
        if bold:
            cell.font = Font(bold=True)
        return cell
    return value  # None and bool


def write_xlsx(out: Path | BinaryIO, sheets: Sequence[Sheet], tz: str | None = None) -> None:
    """Write an XLSX workbook, one sheet per Sheet, header row bold and frozen."""
    if not sheets:
        raise ExportError("an XLSX report needs at least one sheet")
    wb = Workbook(write_only=True)
    used: set[str] = set()
    try:
        for sheet in sheets:
            ws = wb.create_sheet(_sheet_title(sheet.title, used))
            ws.freeze_panes = "A2"
            ws.append([_xlsx_cell(ws, h, tz, bold=True) for h in sheet.header])
            for row in sheet.rows:
                if len(row) != len(sheet.header):
                    raise ExportError(
                        f"sheet {sheet.title!r}: row has {len(row)} cells, "
                        f"header has {len(sheet.header)}: {row!r}"
                    )
                ws.append([_xlsx_cell(ws, v, tz) for v in row])
    except BaseException:
        # Write-only sheets stream into temporary files through generators; close them now,
        # or they fail later, at garbage collection, on files already gone.
        for ws in wb.worksheets:
            if not ws.closed:
                ws.close()
        raise
    wb.save(out)
