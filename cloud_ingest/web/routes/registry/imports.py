"""Adding people from a sheet in the browser: /registry/people/import.

Paste rows (from Excel: tab-separated; or CSV) or upload the CSV/XLSX that `warmcard import
--people` takes (columns person_id, display_name, site_id, role). 预览 Preview checks every row
and shows what would be written, or every row's problem; 导入 Import checks again and writes
all rows or none (registry/importer.py). Rows may only name sites the user manages; a row that
names another site, or a person id held elsewhere, refuses the whole sheet with 404 or 403
like any object outside the user's areas.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse

from cloud_ingest.errors import ImportFailed
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
    "refused": None,
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
    **context: Any,
) -> HTMLResponse:
    return ctx.render(
        "registry_import.html",
        active="registry",
        title_key="import_people",
        section="/registry/people",
        status_code=status_code,
        sites=render.site_names(service.registry, ctx.lang),
        edit_sites=sorted(scope.edit),
        text=text,
        **{**_NOTHING_YET, **context},
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


def _check_sites(scope: vis.Scope, upload: Upload) -> None:
    """404/403 unless every site the sheet names is the user's to edit, checked before the rows
    are: a site of another area then answers exactly like a site that does not exist."""
    text = upload.data.decode("utf-8-sig", errors="replace")
    rows = csv.DictReader(io.StringIO(text, newline=""))
    named = set()
    for row in rows:
        site = {(k or "").strip().lower(): (v or "") for k, v in row.items()}.get("site_id")
        if isinstance(site, str) and site.strip():
            named.add(site.strip())
    for site_id in sorted(named):
        vis.require_edit(scope, site_id)


def _check_people(
    service: ConsoleService, scope: vis.Scope, rows: list[tuple[object, ...]]
) -> None:
    """404/403 unless every person id already in the registry is one the user may edit."""
    for site_id in sorted(set(_held(service, rows).values())):
        vis.require_edit(scope, site_id)


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
    if not shown.strip():
        return _show(ctx, service, scope, problems=[(PASTED, 0, "nothing to import")])
    try:
        _check_sites(scope, upload)
        checked = import_csv(service.registry, people=upload, dry_run=True)
        _check_people(service, scope, checked.people)
        if action == "import":
            done = import_csv(service.registry, people=upload)
            note(ctx.request, results=done.counts["people"])
            return _show(ctx, service, scope, imported=done.people)
    except ImportFailed as exc:
        # A preview that finds problems did its job (200); an import refused is a 400.
        code = 400 if action == "import" else 200
        return _show(ctx, service, scope, text=shown, problems=exc.problems, status_code=code)
    except HTTPException as exc:
        # Not a trace of the sheet in the answer: it names a site or person outside the areas.
        return _show(ctx, service, scope, refused=exc.detail, status_code=exc.status_code)
    existing = set(_held(service, checked.people))
    return _show(ctx, service, scope, text=shown, preview=checked.people, existing=existing)
