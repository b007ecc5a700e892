"""A plain console page around server-rendered content: title, nav, user, no scripts by default.

The registry and report pages use it until the console shell's base template replaces
`render_page` (same arguments).
"""

from __future__ import annotations

import html
from importlib import resources

from fastapi.responses import HTMLResponse, Response

from cloud_ingest.api.security import PAGE_HEADERS

NAV = (
    ("/", "总览", "Overview"),
    ("/alerts", "告警", "Alerts"),
    ("/registry/people", "登记", "Registry"),
    ("/reports", "报表", "Reports"),
)
ASSETS = {"console.css": "text/css", "enrol.js": "text/javascript"}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_page(
    title: str,
    body: str,
    *,
    username: str,
    csrf_token: str,
    active: str = "",
    scripts: tuple[str, ...] = (),
    status_code: int = 200,
) -> HTMLResponse:
    """`body` is trusted HTML built with `esc`; scripts are names from ASSETS."""
    nav = " ".join(
        f'<a href="{href}"{" aria-current=page" if href == active else ""}>'
        f'{zh} <span lang="en">{en}</span></a>'
        for href, zh, en in NAV
    )
    tags = "".join(f'<script src="/console-assets/{esc(s)}" defer></script>' for s in scripts)
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{esc(csrf_token)}">
<title>{esc(title)} · 温馨卡 Warmcard</title>
<link rel="stylesheet" href="/console-assets/console.css">{tags}</head>
<body><header><nav>{nav}</nav>
<form method="post" action="/logout"><span>{esc(username)}</span>
<input type="hidden" name="csrf_token" value="{esc(csrf_token)}">
<button>退出 <span lang="en">Log out</span></button></form></header>
<main><h1>{esc(title)}</h1>
{body}
</main></body></html>"""
    headers = dict(PAGE_HEADERS)
    if scripts:
        headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    return HTMLResponse(page, status_code, headers=headers)


def asset(name: str) -> Response:
    """A file of cloud_ingest/api/static/console/ named in ASSETS; 404 for anything else."""
    media = ASSETS.get(name)
    if media is None:
        return Response(status_code=404)
    text = resources.files("cloud_ingest.api").joinpath(f"static/console/{name}").read_text("utf-8")
    return Response(text, media_type=media, headers={"Cache-Control": "max-age=300"})
