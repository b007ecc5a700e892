"""Adding people from a sheet in the browser: /registry/people/import.

Paste rows (from Excel: tab-separated; or CSV) or upload the CSV/XLSX that `warmcard import
--people` takes (columns person_id, display_name, site_id, role). 预览 Preview checks every row
and shows what would be written, or every row's problem; 导入 Import checks again and writes
all rows or none (registry/importer.py). Rows may only name sites the user manages: a row
that names another site, or a person id held elsewhere, is listed with its line like any other
problem (saying only "does not exist or is outside your areas"); importing such a sheet
answers 404 like any object outside the user's areas. Every problem reads zh-CN first with
the English beside it; the English is what `warmcard import` prints.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import HTMLResponse

from cloud_ingest.errors import ImportFailed
from cloud_ingest.i18n import EN, Said, t
from cloud_ingest.registry.importer import Upload, import_csv, sheet_as_csv
from cloud_ingest.service import ConsoleService
from cloud_ingest.web import render
from cloud_ingest.web import visibility as vis
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep, ScopeDep, ServiceDep
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.schemas.errors import ERRORS
from cloud_ingest.web.security import csrf_protect

router = APIRouter(tags=["registry"], dependencies=[Depends(csrf_protect)], responses=ERRORS)

MAX_UPLOAD = 5 * 1024 * 1024  # ~50 000 rows; a courtyard opening has dozens
PASTED = "粘贴 pasted"
# What the template shows when a step has nothing of its own (it refuses undefined names).
_NOTHING_YET: dict[str, Any] = {
    "imported": None,
    "problems": [],
    "preview": [],
    "existing": set(),
}


def _show(
    ctx: PageContext,
    service: ConsoleService,
    scope: vis.Scope,
    *,
    text: str = "",
    status_code: int = 200,
    problems: list[tuple[str, int, str]] | None = None,
    **context: Any,
) -> HTMLResponse:
    shown = [(line, _problem_text(line, problem, ctx.lang)) for _, line, problem in problems or []]
    return ctx.render(
        "registry_import.html",
        active="registry",
        title_key="import_people",
        section="/registry/people",
        status_code=status_code,
        sites=render.site_names(service.registry, ctx.lang),
        edit_sites=sorted(scope.edit),
        text=text,
        **{**_NOTHING_YET, "problems": shown, **context},
    )


def _as_csv(text: str) -> str:
    """Rows pasted from a spreadsheet come tab-separated: make them CSV."""
    if "\t" not in text:
        return text
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in text.splitlines():
        writer.writerow(cell.strip() for cell in line.split("\t"))
    return out.getvalue()


def _problem_text(line: int, problem: str, lang: str) -> str:
    """'第 3 行：姓名为空 line 3: display_name is empty' (English alone on an English page)."""
    en = t("import_row_problem", EN, line=line, problem=problem) if line else str(problem)
    if lang == EN:
        return en
    zh = problem.says(lang) if isinstance(problem, Said) else ""
    if line:
        zh = t("import_row_problem", lang, line=line, problem=zh)
    return f"{zh} {en}" if zh else en


def _outside(problems: list[tuple[str, int, str]]) -> bool:
    """A row names a site or a person outside the user's areas."""
    keys = {"import_site_outside", "import_person_elsewhere"}
    return any(isinstance(p, Said) and p.key in keys for _, _, p in problems)


def _held(service: ConsoleService, rows: list[tuple[object, ...]]) -> dict[str, str]:
    """Person ids of these rows already in the registry, with their sites."""
    homes = service.registry.people_homes([str(r[0]) for r in rows])
    return {person: site for person, (_, site) in homes.items()}


@router.get("/registry/people/import", response_class=HTMLResponse, include_in_schema=False)
def import_page(ctx: PageDep, scope: ScopeDep, service: ServiceDep) -> HTMLResponse:
    return _show(ctx, service, scope)


@router.post("/registry/people/import", response_class=HTMLResponse, include_in_schema=False)
def import_form(
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    text: Annotated[str, Form(max_length=MAX_UPLOAD)] = "",
    file: Annotated[UploadFile | None, File()] = None,
    action: Annotated[Literal["preview", "import"], Form()] = "preview",
) -> HTMLResponse:
    if file is not None and file.filename:
        data = file.file.read(MAX_UPLOAD + 1)
        try:
            upload = sheet_as_csv(file.filename, data[:MAX_UPLOAD])
        except ImportFailed as exc:
            return _show(ctx, service, scope, problems=exc.problems, status_code=400)
    else:
        upload = Upload(PASTED, _as_csv(text).encode("utf-8"))
    shown = upload.data.decode("utf-8", errors="replace")
    kept = shown if upload.name != PASTED else text  # the box keeps what was pasted, tabs and all
    if not shown.strip():
        return _show(ctx, service, scope, problems=[(PASTED, 0, Said("import_nothing"))])
    try:
        checked = import_csv(service.registry, people=upload, dry_run=True, editable=scope.edit)
        if action == "import":
            done = import_csv(service.registry, people=upload, editable=scope.edit)
            note(ctx.request, results=done.counts["people"])
            return _show(ctx, service, scope, imported=done.people)
    except ImportFailed as exc:
        # A preview that finds problems did its job (200); an import refused is a 400, or a
        # 404 like any object outside the user's areas when a row names one. The sheet stays
        # in the box to be fixed, and the rows that passed are shown beside the problems.
        code = 200
        if action == "import":
            code = 404 if _outside(exc.problems) else 400
        existing = set(_held(service, exc.people))
        return _show(
            ctx,
            service,
            scope,
            text=kept,
            problems=exc.problems,
            preview=exc.people,
            existing=existing,
            status_code=code,
        )
    existing = set(_held(service, checked.people))
    return _show(ctx, service, scope, text=kept, preview=checked.people, existing=existing)
