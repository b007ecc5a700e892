"""CSV import into the registry: every bad row reported as `file:line: problem`, all or nothing.

The columns of each file are documented in docs/registry-csv.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud_ingest.errors import ImportFailed
from cloud_ingest.i18n import Said
from cloud_ingest.registry.names import name_problem
from cloud_ingest.registry.store import (
    MEAL_COLUMNS,
    Registry,
    parse_window,
)
from warmcard.cards import canonical_uid
from warmcard.contract import Mode
from warmcard.ids import DEVICE_ID_RE, HHMM_RE, PERSON_ID_RE, SITE_ID_RE
from warmcard.localtime import DEFAULT_TZ

MAX_SITE_NAME = 100
MAX_PERSON_NAME = 64

COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # file kind: (required columns, optional columns)
    "sites": (
        ("site_id", "name_zh"),
        ("name_en", "tz", "capacity", "opening", "closing", *MEAL_COLUMNS),
    ),
    "devices": (("device_id", "site_id", "mode"), ("debounce_s",)),
    "people": (("person_id", "display_name", "site_id"), ("role",)),
    "cards": (("card_uid", "person_id"), ("active",)),
}

Problem = tuple[str, int, str]
Row = tuple[object, ...]
Progress = Callable[[int, int], None]
"""Called as rows are checked and then written: (rows done, rows in all); done counts to 2×."""
WRITE_CHUNK = 1000


@dataclass
class ImportSummary:
    counts: dict[str, int] = field(default_factory=dict)
    version: int = 0
    people: list[Row] = field(default_factory=list)  # (person_id, name, site_id, role) checked


@dataclass(frozen=True)
class Upload:
    """A file's bytes that came without a path (a browser upload or pasted text)."""

    name: str
    data: bytes


def sheet_as_csv(name: str, data: bytes) -> Upload:
    """An upload as CSV bytes: an .xlsx workbook's first sheet converted, anything else as is."""
    if not name.lower().endswith(".xlsx"):
        return Upload(name, data)
    from openpyxl import load_workbook  # only uploads of workbooks pay for the import

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises zipfile, XML and its own errors for a bad file
        raise ImportFailed([(name, 0, Said("import_not_xlsx"))]) from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sheet = book.worksheets[0]
    for row in sheet.iter_rows(values_only=True):
        writer.writerow(["" if v is None else str(v) for v in row])
    book.close()
    return Upload(name, out.getvalue().encode("utf-8"))


@dataclass
class _Rows:
    name: str
    rows: list[tuple[int, dict[str, str]]]


def _read(path: Path | Upload, kind: str, problems: list[Problem]) -> _Rows:
    if isinstance(path, Upload):
        name, raw = path.name, path.data
    else:
        name = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append((name, 0, f"cannot read file: {exc.strerror}"))
            return _Rows(name, [])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append((name, line, Said("import_not_utf8")))
        return _Rows(name, [])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        problems.append((name, 1, Said("import_empty_file")))
        return _Rows(name, [])
    header = [h.strip().lower() for h in header]
    required, optional = COLUMNS[kind]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing:
        problems.append((name, 1, Said("import_missing_columns", columns=", ".join(missing))))
    if unknown:
        allowed = ", ".join(required + optional)
        problems.append(
            (name, 1, Said("import_unknown_columns", columns=", ".join(unknown), allowed=allowed))
        )
    if missing or unknown:
        return _Rows(name, [])
    rows = []
    line = reader.line_num
    for record in reader:
        start = line + 1
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(
                (name, start, Said("import_value_count", n=len(record), expected=len(header)))
            )
            continue
        rows.append((start, {h: v.strip() for h, v in zip(header, record, strict=True)}))
    return _Rows(name, rows)


class _Validator:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.problems: list[Problem] = []

    def check_ids(self, rows: _Rows, key: str, pattern: re.Pattern[str], example: str) -> set[str]:
        seen: dict[str, int] = {}
        column = Said(f"column_{key}")  # site_id, device_id or person_id
        for line, row in rows.rows:
            value = row[key]
            if not pattern.fullmatch(value):
                said = Said("import_id_invalid", column=column, value=value, example=example)
                self.problems.append((rows.name, line, said))
            elif value in seen:
                said = Said("import_id_repeated", column=column, value=value, first=seen[value])
                self.problems.append((rows.name, line, said))
            else:
                seen[value] = line
        return set(seen)

    def problem(self, rows: _Rows, line: int, text: str) -> None:
        self.problems.append((rows.name, line, text))

    def existing(self, sql: str) -> set[str]:
        return {r[0] for r in self.registry.query(sql)}


def _check_time(v: _Validator, rows: _Rows, line: int, column: str, value: str) -> None:
    if not HHMM_RE.fullmatch(value):
        v.problem(rows, line, f"{column} {value!r} must be HH:MM (24 h), e.g. 07:30")


def _validate_sites(v: _Validator, rows: _Rows) -> list[Row]:
    v.check_ids(rows, "site_id", SITE_ID_RE, "dali-xizhou-01")
    out: list[Row] = []
    for line, row in rows.rows:
        before = len(v.problems)
        for column in ("name_zh", "name_en"):
            value = row.get(column, "")
            problem = name_problem(value, MAX_SITE_NAME) if value or column == "name_zh" else None
            if problem:
                v.problem(rows, line, f"{column} {problem}")
        tz = row.get("tz") or DEFAULT_TZ
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            v.problem(rows, line, f"tz {tz!r} is not a known time zone (e.g. Asia/Shanghai)")
        capacity: int | None = None
        if row.get("capacity"):
            try:
                capacity = int(row["capacity"])
                if capacity < 0:
                    raise ValueError
            except ValueError:
                v.problem(rows, line, f"capacity {row['capacity']!r} must be a whole number ≥ 0")
        opening = row.get("opening") or "07:00"
        closing = row.get("closing") or "18:00"
        _check_time(v, rows, line, "opening", opening)
        _check_time(v, rows, line, "closing", closing)
        if HHMM_RE.fullmatch(opening) and HHMM_RE.fullmatch(closing) and opening >= closing:
            v.problem(rows, line, f"opening {opening} must be before closing {closing}")
        meals: list[str | None] = []
        for period in MEAL_COLUMNS:
            text = row.get(period, "")
            meals.append(text or None)
            if not text:
                continue
            try:
                window = parse_window(period, text)
            except ValueError as exc:
                first = str(exc).splitlines()[0]
                v.problem(rows, line, f"{period} {text!r}: must be HH:MM-HH:MM ({first})")
                continue
            if window.start >= window.end:
                v.problem(rows, line, f"{period} window {text} ends before it starts")
        if len(v.problems) == before:
            out.append(
                (
                    row["site_id"],
                    row["name_zh"],
                    row.get("name_en", ""),
                    tz,
                    capacity,
                    opening,
                    closing,
                    *meals,
                )
            )
    return out


def _validate_devices(v: _Validator, rows: _Rows, sites: set[str]) -> list[Row]:
    v.check_ids(rows, "device_id", DEVICE_ID_RE, "kiosk-xizhou-01")
    out: list[Row] = []
    for line, row in rows.rows:
        before = len(v.problems)
        if row["site_id"] not in sites:
            v.problem(
                rows,
                line,
                f"site_id {row['site_id']!r} is neither in the registry nor in the sites file",
            )
        if row["mode"] not in {m.value for m in Mode}:
            v.problem(rows, line, f"mode {row['mode']!r} must be entrance or canteen")
        debounce = 10.0
        if row.get("debounce_s"):
            try:
                debounce = float(row["debounce_s"])
                if not 0 <= debounce <= 3600:
                    raise ValueError
            except ValueError:
                v.problem(rows, line, f"debounce_s {row['debounce_s']!r} must be 0–3600 seconds")
        if len(v.problems) == before:
            out.append((row["device_id"], row["site_id"], row["mode"], debounce))
    return out


def _validate_people(
    v: _Validator, rows: _Rows, sites: set[str], editable: Collection[str] | None
) -> list[Row]:
    v.check_ids(rows, "person_id", PERSON_ID_RE, "P000123 (pseudonymous, no names)")
    bad_ids = {line for name, line, _ in v.problems if name == rows.name}  # invalid or repeated
    held: dict[str, str] = {}
    if editable is not None:
        homes = v.registry.people_homes([row["person_id"] for _, row in rows.rows])
        held = {person: site for person, (_, site) in homes.items()}
    out: list[Row] = []
    for line, row in rows.rows:
        before = len(v.problems)
        name = row["display_name"]
        problem = name_problem(name, MAX_PERSON_NAME)
        if problem:
            v.problem(rows, line, Said("import_display_name", problem=problem))
        site = row["site_id"]
        # For a user's sheet, a site or person of another area reads exactly like one that
        # does not exist: the problem names nothing the user did not type.
        if editable is not None and site not in editable:
            v.problem(rows, line, Said("import_site_outside", site=site))
        elif site not in sites:
            v.problem(rows, line, Said("import_site_unknown", site=site))
        home = held.get(row["person_id"])
        if editable is not None and home is not None and home not in editable:
            v.problem(rows, line, Said("import_person_elsewhere", person=row["person_id"]))
        role = (row.get("role") or "elder").lower()
        if role not in ("elder", "staff"):
            v.problem(rows, line, Said("import_role", role=row.get("role")))
        if len(v.problems) == before and line not in bad_ids:
            out.append((row["person_id"], name, site, role))
    return out


_ACTIVE = {"": 1, "1": 1, "true": 1, "yes": 1, "y": 1, "0": 0, "false": 0, "no": 0, "n": 0}


def _validate_cards(v: _Validator, rows: _Rows, people: set[str]) -> list[Row]:
    out: list[Row] = []
    seen: dict[str, int] = {}
    for line, row in rows.rows:
        before = len(v.problems)
        uid = ""
        try:
            uid = canonical_uid(row["card_uid"])
        except ValueError as exc:
            v.problem(rows, line, str(exc))
        if uid and uid in seen:
            v.problem(rows, line, f"card_uid {uid} already on line {seen[uid]}")
        elif uid:
            seen[uid] = line
        if row["person_id"] not in people:
            v.problem(
                rows,
                line,
                f"person_id {row['person_id']!r} is neither in the registry nor in the people file",
            )
        active = _ACTIVE.get(row.get("active", "").lower())
        if active is None:
            v.problem(rows, line, f"active {row['active']!r} must be 1 or 0")
        if len(v.problems) == before:
            out.append((uid, row["person_id"], active))
    return out


def _upsert(table: str, columns: tuple[str, ...]) -> str:
    """Insert a row, or update every column but the key (the first) of the row already there."""
    key, *rest = columns
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) ON CONFLICT ({key}) "
        f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)}"
    )


def import_csv(
    registry: Registry,
    *,
    sites: Path | None = None,
    devices: Path | None = None,
    people: Path | Upload | None = None,
    cards: Path | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    editable: Collection[str] | None = None,
) -> ImportSummary:
    """Validate every row of every file, then upsert all of them in one transaction.

    Raises ImportFailed listing every problem; in that case nothing is written. `progress`
    hears (done, total) where total is twice the row count: each row is checked, then written.
    `dry_run` checks only: the summary says what would be written (a preview). `editable`, for
    a user's sheet, holds the sites its people rows may name; a row naming another site, or the
    id of a person at another site, is a problem that says no more than "not yours".
    """
    v = _Validator(registry)
    empty = _Rows("", [])
    files = {"sites": sites, "devices": devices, "people": people, "cards": cards}
    read = {
        k: _read(p if isinstance(p, Upload) else Path(p), k, v.problems) if p else empty
        for k, p in files.items()
    }
    total = 2 * sum(len(r.rows) for r in read.values())
    done = 0

    def checked(kind: str) -> None:
        nonlocal done
        done += len(read[kind].rows)
        if progress is not None:
            progress(done, total)

    site_rows = _validate_sites(v, read["sites"])
    checked("sites")
    site_ids = v.existing("SELECT site_id FROM sites") | {
        r["site_id"] for _, r in read["sites"].rows
    }
    device_rows = _validate_devices(v, read["devices"], site_ids)
    checked("devices")
    people_rows = _validate_people(v, read["people"], site_ids, editable)
    checked("people")
    person_ids = v.existing("SELECT person_id FROM people") | {
        r["person_id"] for _, r in read["people"].rows
    }
    card_rows = _validate_cards(v, read["cards"], person_ids)
    checked("cards")
    if v.problems:
        raise ImportFailed(sorted(v.problems, key=lambda p: (p[0], p[1])), people_rows)
    counts = {
        "sites": len(site_rows),
        "devices": len(device_rows),
        "people": len(people_rows),
        "cards": len(card_rows),
    }
    if dry_run:
        return ImportSummary(counts, registry.version, people_rows)

    # (table, its columns in the order the _validate_* functions build the rows, rows)
    upserts: list[tuple[str, tuple[str, ...], list[Row]]] = [
        ("sites", ("site_id", "name_zh", "name_en", "tz", "capacity", "opening", "closing",
                   *MEAL_COLUMNS), site_rows),
        ("people", ("person_id", "display_name", "site_id", "role"), people_rows),
        ("devices", ("device_id", "site_id", "mode", "debounce_s"), device_rows),
        ("cards", ("card_uid", "person_id", "active"), card_rows),
    ]  # fmt: skip
    try:
        with registry.change() as db:
            for table, columns, rows in upserts:
                upsert = text(_upsert(table, columns))
                for start in range(0, len(rows), WRITE_CHUNK):
                    chunk = rows[start : start + WRITE_CHUNK]
                    db.execute(upsert, [dict(zip(columns, row, strict=True)) for row in chunk])
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except SQLAlchemyError as exc:
        raise ImportFailed(
            [("(registry)", 0, f"database error, nothing imported: {getattr(exc, 'orig', exc)}")]
        ) from None
    return ImportSummary(counts, registry.version, people_rows)
