"""Console page rendering shared by every page: the Jinja templates, language, nav and headers.

A page route takes a `PageContext` (``deps.PageDep``) and renders ``templates/<page>.html``,
which extends ``base.html`` (header, nav for 总览 Overview, 告警 Alerts, 登记 Registry, 报表
Reports, language switch, logout). Data a page's script needs goes into the template as JSON
(`page_data`), never into inline script, so the Content-Security-Policy can forbid inline code.
Shared browser code is ``static/console.js`` (on every page: the nav's alert count among
others); a page adds its own module only where it needs one. The one stylesheet is
``static/console.css``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from cloud_ingest import i18n
from cloud_ingest.console.accounts import Session
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry

LANG_COOKIE = "lang"
NAV: tuple[tuple[str, str, str], ...] = (
    # (id, href, message key); each page module owns its own path
    ("overview", "/", "overview"),
    ("alerts", "/alerts", "nav_alerts"),
    ("registry", "/registry", "nav_registry"),
    ("reports", "/reports", "nav_reports"),
    ("users", "/admin/users", "nav_users"),
)
# Messages console.js shows on every page (a page's own are merged in by its route).
SHARED_MESSAGES = ("live", "connecting", "reconnecting", "updated_at", "alerts_open")
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
    loader=jinja2.PackageLoader("cloud_ingest.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def tel_uri(phone: str) -> str:
    """A phone number as a tel: link target: digits and a leading + only (138 8873 8236 ->
    13888738236), so every phone dials it."""
    digits = "".join(c for c in phone if c.isdigit())
    return "+" + digits if phone.lstrip().startswith("+") else digits


_ENV.filters["tel"] = tel_uri


def page_lang(request: Request) -> str:
    """?lang= wins (and is remembered in a cookie), then the cookie, else zh-CN."""
    return i18n.pick_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def messages(lang: str, keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The given message templates in one language, for a page's script."""
    return {k: (i18n.MESSAGES[k][1] if lang == i18n.EN else i18n.MESSAGES[k][0]) for k in keys}


def pick(pair: tuple[str, str], lang: str) -> str:
    """One side of a (zh-CN, English) pair kept beside its data (alert kinds, flags)."""
    return pair[1] if lang == i18n.EN else pair[0]


def local_name(name_zh: str, name_en: str, lang: str) -> str:
    """A site's or area's name in the page's language (zh-CN when there is no English)."""
    return name_en if lang == i18n.EN and name_en else name_zh


def site_names(registry: Registry, lang: str) -> dict[str, str]:
    """site_id -> the site's name in the page's language."""
    return {s.site_id: local_name(s.name_zh, s.name_en, lang) for s in registry.sites()}


def area_names(conn: Connection, paths: Iterable[str], lang: str) -> dict[str, str]:
    """area path -> the area's name in the page's language; the root is 全部 All, and a path
    the areas table does not hold is left out (callers show the path itself)."""
    named: dict[str, str] = {}
    for path in set(paths):
        if path == areas.ROOT:
            named[path] = i18n.t("all", lang)
        elif (found := areas.get_area(conn, path)) is not None:
            named[path] = local_name(found.name_zh, found.name_en, lang)
    return named


def alert_poll_s(evaluate_s: float) -> float:
    """How often pages ask for alert counts: no faster than the engine evaluates, 2-30 s."""
    return float(min(30.0, max(2.0, evaluate_s)))


@dataclass(frozen=True)
class PageContext:
    """A console page being answered: its request, the session, how often its nav polls alerts."""

    request: Request
    session: Session
    alert_poll_s: float

    @property
    def lang(self) -> str:
        return page_lang(self.request)

    def render(
        self,
        template: str,
        *,
        active: str,
        title_key: str,
        page_data: dict[str, Any] | None = None,
        script: str | None = None,
        title: str | None = None,
        live: bool = False,
        status_code: int = 200,
        switch_to: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A full console page.

        `script` is the page's own module under /static (None: console.js alone); `title`
        replaces the translated `title_key` (e.g. a person's name); `live` shows the stream
        badge; `switch_to` is the page the language switch reloads (default: this path; an
        answer to a form post passes the page to go back to).
        """
        request, session = self.request, self.session
        lang = self.lang
        data = page_data or {}

        def t(key: str, **params: object) -> str:
            return i18n.t(key, lang, **params)

        other = i18n.ZH if lang == i18n.EN else i18n.EN
        body = _ENV.get_template(template).render(
            lang=lang,
            html_lang="en" if lang == i18n.EN else "zh-CN",
            t=t,
            pick=lambda pair: pick(pair, lang),
            nav=NAV,
            active=active,
            title=title or t(title_key),
            user=session.user,
            csrf_token=session.csrf_token,
            switch_href=f"{switch_to or request.url.path}?lang={other}",
            live=live,
            page_data={
                "lang": lang,
                "csrf_token": session.csrf_token,
                "alert_poll_s": self.alert_poll_s,
                **data,
                "messages": {**messages(lang, SHARED_MESSAGES), **data.get("messages", {})},
            },
            script=script,
            **context,
        )
        response = HTMLResponse(body, status_code, headers=CONSOLE_HEADERS)
        if "lang" in request.query_params:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response

    def not_done(
        self, message: str, status_code: int, *, active: str, back: str, switch_to: str = ""
    ) -> HTMLResponse:
        """The page that says what was refused or failed, with a way back (error.html);
        `switch_to` is the page the language switch reloads (default: `back`)."""
        return self.render(
            "error.html",
            active=active,
            title_key="not_done",
            status_code=status_code,
            switch_to=switch_to or back,
            message=message,
            back=back,
        )
