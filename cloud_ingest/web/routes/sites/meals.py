"""补录: a meal recorded by hand when an elder forgot the card, at /sites/{site_id}/meals/manual.

The page (search the elder by name, pinyin initials or id; meal period, date, reason), its form
and the JSON `POST /api/v1/sites/{site_id}/meals/manual`. Only canteen staff, managers and admins
of the site (`Action.RECORD_MEAL`): a site the user cannot see answers 404, one they only see
403. What is stored and what is refused: `cloud_ingest.console.hand_meals`; every attempt is an
audit row (`create`, `meal`, the person's id).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.console import hand_meals
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.hand_meals import HandMeal
from cloud_ingest.registry.store import Site
from cloud_ingest.web import render
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep, ScopeDep, ServiceDep, record_hand_meal, site_people
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.schemas.errors import ERRORS, UNAVAILABLE
from cloud_ingest.web.schemas.meals import HandMealIn, HandMealOut
from cloud_ingest.web.security import (
    NOT_FOUND,
    AccountStoreDep,
    CurrentUser,
    SiteMealRecorder,
    csrf_protect,
)

router = APIRouter(
    tags=["meals"], dependencies=[Depends(csrf_protect)], responses={**ERRORS, **UNAVAILABLE}
)

PAGE_MESSAGES = ("pick_person", "no_match", "hand_meal_chosen")
FormText = Annotated[str, Form(max_length=400)]


def _site(service: Any, site_id: str) -> Site:
    site: Site | None = service.registry.site(site_id)
    if site is None:
        raise HTTPException(404, NOT_FOUND)
    return site


def _recent(store: AccountStore, site: Site, now_us: int) -> list[HandMeal]:
    with store.db.read() as conn:
        return hand_meals.recent(conn, site.site_id, hand_meals.earliest_day(site, now_us))


def _out(meal: HandMeal, tz: str) -> HandMealOut:
    return HandMealOut(
        seq=meal.seq,
        event_id=meal.event_id,
        person_id=meal.person_id,
        site_id=meal.site_id,
        day=meal.day.isoformat(),
        meal_period=meal.period.value,
        reason=meal.reason,
        recorded_by=meal.recorded_by,
        witness=f"user:{meal.recorded_by}",
        recorded_local=i18n.format_ts(meal.recorded_us, tz),
    )


def _page(
    ctx: PageContext,
    ref_site: Site,
    people: list[dict[str, Any]],
    recent: list[HandMeal],
    *,
    now_us: int,
    error: str | None = None,
    done: HandMeal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = ctx.lang
    names = {p["id"]: p["name"] for p in people}
    today = hand_meals.today(ref_site, now_us)
    return ctx.render(
        "hand_meal.html",
        active="overview",
        title_key="hand_meal",
        script="hand_meal.js",
        status_code=status_code,
        page_data={"people": people, "messages": render.messages(lang, PAGE_MESSAGES)},
        site=ref_site,
        site_name=render.local_name(ref_site.name_zh, ref_site.name_en, lang),
        periods=list(hand_meals.period_starts(ref_site)),
        current=hand_meals.current_period(ref_site, now_us).value,
        today=today.isoformat(),
        earliest=hand_meals.earliest_day(ref_site, now_us).isoformat(),
        max_days=hand_meals.MAX_DAYS_BACK,
        max_reason=hand_meals.MAX_REASON,
        error=error,
        done=done,
        done_name=names.get(done.person_id, "") if done else "",
        recent=[
            {
                "day": i18n.format_date(m.day, lang),
                "period": m.period.value,
                "person": f"{names.get(m.person_id, '')} · {m.person_id}",
                "reason": m.reason,
                "by": m.recorded_by,
                "at": i18n.format_ts(m.recorded_us, ref_site.tz),
                "replaced": i18n.t(
                    "hand_meal_replaced",
                    lang,
                    device=m.replaced_by.split("#")[0],
                    at=i18n.format_ts(m.replaced_us or 0, ref_site.tz),
                )
                if m.replaced_by
                else "",
            }
            for m in recent
        ],
    )


@router.get("/sites/{site_id}/meals/manual", response_class=HTMLResponse, include_in_schema=False)
def hand_meal_page(
    ref: SiteMealRecorder,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    store: AccountStoreDep,
    done: int = 0,
) -> HTMLResponse:
    site = _site(service, ref.site_id)
    now = service.clock()
    recent = _recent(store, site, now)
    shown = next((m for m in recent if m.seq == done), None)
    people = site_people(service, scope, site.site_id)
    return _page(ctx, site, people, recent, now_us=now, done=shown)


@router.post("/sites/{site_id}/meals/manual", response_class=HTMLResponse, include_in_schema=False)
def hand_meal_form(
    request: Request,
    ref: SiteMealRecorder,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    store: AccountStoreDep,
    person_id: FormText = "",
    meal_period: FormText = "",
    day: FormText = "",
    reason: FormText = "",
) -> Response:
    """The page's form: back to the page with the meal shown, or the page again with the error."""
    note(request, object=person_id.strip()[:64], site=ref.site_id, period=meal_period, day=day)
    try:
        meal = record_hand_meal(
            service, store, ref, ctx.session.user, person_id.strip(), meal_period, day, reason
        )
    except HTTPException as exc:
        site = _site(service, ref.site_id)
        now = service.clock()
        recent = _recent(store, site, now)
        people = site_people(service, scope, site.site_id)
        return _page(
            ctx, site, people, recent, now_us=now, error=str(exc.detail),
            status_code=exc.status_code,
        )  # fmt: skip
    note(request, seq=meal.seq)
    return RedirectResponse(
        f"/sites/{ref.site_id}/meals/manual?done={meal.seq}", status.HTTP_303_SEE_OTHER
    )


@router.post(
    "/api/v1/sites/{site_id}/meals/manual",
    status_code=status.HTTP_201_CREATED,
    response_model=HandMealOut,
)
def record_meal(
    request: Request,
    body: HandMealIn,
    ref: SiteMealRecorder,
    user: CurrentUser,
    service: ServiceDep,
    store: AccountStoreDep,
) -> HandMealOut:
    """Record a meal by hand (补录): counted, marked manual; 409 if already recorded."""
    day = body.day.isoformat() if isinstance(body.day, date) else ""
    note(request, object=body.person_id, site=ref.site_id, period=body.meal_period or "", day=day)
    meal = record_hand_meal(
        service, store, ref, user, body.person_id, body.meal_period or "", day, body.reason,
    )  # fmt: skip
    note(request, seq=meal.seq)
    return _out(meal, _site(service, ref.site_id).tz)
