"""Report exports read back with csv and openpyxl: formulas neutralised, numbers kept."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cloud_ingest import i18n
from cloud_ingest.console import exports
from cloud_ingest.console.exports import Cell, Sheet
from cloud_ingest.errors import ExportError

HEADER = [i18n.both("site"), i18n.both("meals"), "备注 Note", i18n.both("time")]
NOON_SHANGHAI = datetime(2024, 5, 1, 4, 0, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
ROWS: list[list[Cell]] = [
    ["西山小院", 102, '=HYPERLINK("http://evil","点我")', NOON_SHANGHAI],
    ["+86 138 0000 0000", -3, "-2+3", NOON_SHANGHAI],
    ["@SUM(A1:A2)", -2.5, "\tcmd", None],
    ["\rline", Decimal("7.25"), "正常 normal - text", None],
    ["#N/A", 0, "a=b", None],
]
EXPECTED_TEXT = [
    ["西山小院", '\'=HYPERLINK("http://evil","点我")'],
    ["'+86 138 0000 0000", "'-2+3"],
    ["'@SUM(A1:A2)", "'\tcmd"],
    ["'\rline", "正常 normal - text"],
    ["#N/A", "a=b"],
]


def test_neutralise_only_text() -> None:
    assert exports.neutralise("=1+1") == "'=1+1"
    assert exports.neutralise("-5") == "'-5"  # text that looks negative is still text
    assert exports.neutralise(-5) == -5
    assert exports.neutralise(-0.5) == -0.5
    assert exports.neutralise("5-3") == "5-3"
    assert exports.neutralise("") == ""
    assert exports.neutralise(None) is None


def test_csv_has_bom_and_neutralised_cells(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    exports.write_csv(out, HEADER, ROWS, tz="Asia/Shanghai")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER
    assert rows[0][0] == "小院/社区 Courtyard/community"
    body = rows[1:]
    assert [[r[0], r[2]] for r in body] == EXPECTED_TEXT
    # Real numbers are written bare, so Excel reads them as numbers, negatives included.
    assert [r[1] for r in body] == ["102", "-3", "-2.5", "7.25", "0"]
    assert body[0][3] == "2024-05-01 12:00:00"
    assert body[2][3] == ""


def test_csv_streams_in_chunks_to_a_binary_stream() -> None:
    rows = [[f"site-{i}", i, "=x", None] for i in range(5000)]
    chunks = list(exports.iter_csv(HEADER, rows))
    assert len(chunks) > 2
    buffer = io.BytesIO()
    exports.write_csv(buffer, HEADER, rows)
    assert buffer.getvalue() == b"".join(chunks)
    text = buffer.getvalue().decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert len(parsed) == 5001
    assert parsed[-1] == ["site-4999", "4999", "'=x", ""]


def test_xlsx_reads_back_neutralised_text_and_real_numbers(tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    exports.write_xlsx(out, [Sheet("2024年5月 May", HEADER, ROWS)], tz="Asia/Shanghai")
    wb = load_workbook(out)
    ws = wb["2024年5月 May"]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0] == HEADER
    body = values[1:]
    # XML parsers turn a bare carriage return into a line feed; the quote is what matters.
    expected = [[a.replace("\r", "\n"), b] for a, b in EXPECTED_TEXT]
    assert [[r[0], r[2]] for r in body] == expected
    assert [r[1] for r in body] == [102, -3, -2.5, 7.25, 0]
    assert all(isinstance(r[1], int | float) for r in body)
    assert body[0][3] == datetime(2024, 5, 1, 12, 0, 0)  # Shanghai wall-clock time
    # Nothing became a formula or an error value.
    for row in ws.iter_rows(min_row=2):
        assert row[0].data_type == "s" and row[2].data_type == "s"
        assert row[1].data_type == "n"
    assert ws.freeze_panes == "A2"
    assert ws["A1"].font.bold


def test_xlsx_several_sheets_bad_titles_and_control_characters(tmp_path: Path) -> None:
    out = tmp_path / "r.xlsx"
    long = "洱源县 Eryuan County monthly meals [all]"
    exports.write_xlsx(
        out,
        [
            Sheet(long, ["a"], [["ok\x00\x07 text"]]),
            Sheet(long, ["a"], [[date(2024, 5, 31)]]),
        ],
    )
    wb = load_workbook(out)
    assert len(wb.sheetnames) == 2
    assert all(len(n) <= 31 and "[" not in n for n in wb.sheetnames)
    assert wb.sheetnames[0] != wb.sheetnames[1]
    assert wb.worksheets[0]["A2"].value == "ok text"
    assert wb.worksheets[1]["A2"].value == datetime(2024, 5, 31)


@pytest.mark.parametrize(
    "bad",
    [datetime(2024, 5, 1, 12, 0), float("nan"), float("inf"), Decimal("NaN")],
)
def test_unexportable_values_are_refused(tmp_path: Path, bad: Cell) -> None:
    with pytest.raises(ExportError):
        exports.write_csv(tmp_path / "x.csv", ["a"], [[bad]])
    with pytest.raises(ExportError):
        exports.write_xlsx(tmp_path / "x.xlsx", [Sheet("s", ["a"], [[bad]])])


def test_row_length_must_match_header(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="row has 1 cells, header has 2"):
        exports.write_csv(tmp_path / "x.csv", ["a", "b"], [["only one"]])
