"""Console page rendering shared by every page: the Jinja templates, language, nav and headers.

A page module renders ``templates/<page>.html``, which extends ``base.html`` (header, nav for
总览 Overview, 告警 Alerts, 登记 Registry, 报表 Reports, language switch, logout). Data a page's
script needs goes into the template as JSON (`page_data`), never into inline script, so the
Content-Security-Policy can forbid inline code. Shared browser code is ``static/console.js``.
"""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from cloud_ingest import i18n
from cloud_ingest.accounts import Session

LANG_COOKIE = "lang"
NAV: tuple[tuple[str, str, str], ...] = (
    # (id, href, message key); each page module owns its own path
    ("overview", "/", "overview"),
    ("alerts", "/alerts", "nav_alerts"),
    ("registry", "/registry", "nav_registry"),
    ("reports", "/reports", "nav_reports"),
)
CONSOLE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("cloud_ingest.api", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def page_lang(request: Request) -> str:
    """?lang= wins (and is remembered in a cookie), then the cookie, else zh-CN."""
    return i18n.pick_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def messages(lang: str, keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The given message templates in one language, for a page's script."""
    return {k: (i18n.MESSAGES[k][1] if lang == i18n.EN else i18n.MESSAGES[k][0]) for k in keys}


def render(
    request: Request,
    template: str,
    session: Session,
    *,
    active: str,
    title_key: str,
    page_data: dict[str, Any],
    script: str,
    **context: Any,
) -> HTMLResponse:
    """A full console page; `script` is the page's module under /static."""
    lang = page_lang(request)

    def t(key: str, **params: object) -> str:
        return i18n.t(key, lang, **params)

    other = i18n.ZH if lang == i18n.EN else i18n.EN
    body = _ENV.get_template(template).render(
        lang=lang,
        html_lang="en" if lang == i18n.EN else "zh-CN",
        t=t,
        nav=NAV,
        active=active,
        title=t(title_key),
        user=session.user,
        csrf_token=session.csrf_token,
        switch_href=f"{request.url.path}?lang={other}",
        page_data={"lang": lang, "csrf_token": session.csrf_token, **page_data},
        script=script,
        **context,
    )
    response = HTMLResponse(body, headers=CONSOLE_HEADERS)
    if "lang" in request.query_params:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response
