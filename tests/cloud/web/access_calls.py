"""What the access matrix (test_access_matrix.py) sends: for each route that takes area B's
object in its path (`OBJECT`), names it in the query or body (`NAMED`), or lists, searches and
exports (`LISTS`), a call made by a user of area A. URLs and bodies are templates that
`World.fill` fills with B's ids and the month."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AREA_A, AREA_B = "dali/dalishi/xizhou", "dali/dalishi/zhoucheng"


def fill_value(value: Any, ids: dict[str, Any]) -> Any:
    """A template string filled in; a list's strings too (e.g. {"ids": ["{alert_b}"]})."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill_value(v, ids) for v in value]
    return value


@dataclass
class Call:
    method: str
    url: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


# Routes that take an object id in the path: what A sends for B's object. URLs are templates
# filled in by World.fill: {site_b}, {gate_b}, {alert_b}, {capture_b}, {month}, {target_b},
# {closure_b}.
OBJECT: dict[tuple[str, str], Call] = {
    ("GET", "/sites/{site_id}"): Call("GET", "/sites/{site_b}"),
    ("GET", "/api/v1/sites/{site_id}"): Call("GET", "/api/v1/sites/{site_b}"),
    ("GET", "/api/v1/sites/{site_id}/timeline"): Call("GET", "/api/v1/sites/{site_b}/timeline"),
    ("GET", "/api/v1/sites/{site_id}/history"): Call("GET", "/api/v1/sites/{site_b}/history"),
    # 补录 at B's canteen (B's manager may: managers hold the staff's right).
    ("GET", "/sites/{site_id}/meals/manual"): Call("GET", "/sites/{site_b}/meals/manual"),
    ("POST", "/sites/{site_id}/meals/manual"): Call(
        "POST",
        "/sites/{site_b}/meals/manual",
        form={"person_id": "P0007", "meal_period": "lunch", "reason": "忘带卡"},
    ),
    ("POST", "/api/v1/sites/{site_id}/meals/manual"): Call(
        "POST",
        "/api/v1/sites/{site_b}/meals/manual",
        json={"person_id": "P0007", "meal_period": "lunch", "reason": "忘带卡"},
    ),
    ("GET", "/api/v1/alerts/{alert_id:int}"): Call("GET", "/api/v1/alerts/{alert_b}"),
    ("POST", "/api/v1/alerts/{alert_id:int}/ack"): Call(
        "POST", "/api/v1/alerts/{alert_b}/ack", json={}
    ),
    ("POST", "/api/v1/alerts/{alert_id:int}/close"): Call(
        "POST", "/api/v1/alerts/{alert_b}/close", json={}
    ),
    ("POST", "/api/v1/alerts/ack"): Call("POST", "/api/v1/alerts/ack", json={"ids": ["{alert_b}"]}),
    ("GET", "/api/v1/registry/people/{person_id}"): Call("GET", "/api/v1/registry/people/P0007"),
    ("PATCH", "/api/v1/registry/people/{person_id}"): Call(
        "PATCH", "/api/v1/registry/people/P0007", json={"display_name": "改名"}
    ),
    ("POST", "/api/v1/registry/people/{person_id}/erase"): Call(
        "POST", "/api/v1/registry/people/P0007/erase"
    ),
    ("GET", "/api/v1/registry/cards/{card_uid}"): Call("GET", "/api/v1/registry/cards/04A1B207"),
    ("POST", "/api/v1/registry/cards/{card_uid}/deactivate"): Call(
        "POST", "/api/v1/registry/cards/04A1B207/deactivate"
    ),
    ("GET", "/api/v1/registry/devices/{device_id}"): Call(
        "GET", "/api/v1/registry/devices/{gate_b}"
    ),
    ("GET", "/api/v1/registry/devices/{device_id}/enrol"): Call(
        "GET", "/api/v1/registry/devices/{gate_b}/enrol"
    ),
    ("POST", "/api/v1/registry/devices/{device_id}/enrol"): Call(
        "POST", "/api/v1/registry/devices/{gate_b}/enrol", json={"minutes": 5}
    ),
    ("DELETE", "/api/v1/registry/devices/{device_id}/enrol"): Call(
        "DELETE", "/api/v1/registry/devices/{gate_b}/enrol"
    ),
    ("POST", "/api/v1/registry/enrol/captures/{capture_id}/assign"): Call(
        "POST", "/api/v1/registry/enrol/captures/{capture_b}/assign", json={"person_id": "P0001"}
    ),
    ("GET", "/registry/people/{person_id}"): Call("GET", "/registry/people/P0007"),
    ("POST", "/registry/people/{person_id}"): Call(
        "POST", "/registry/people/P0007", form={"display_name": "改名"}
    ),
    ("POST", "/registry/people/{person_id}/cards"): Call(
        "POST", "/registry/people/P0007/cards", form={"card": "04DDEEFF"}
    ),
    ("POST", "/registry/cards/{card_uid}/deactivate"): Call(
        "POST", "/registry/cards/04A1B207/deactivate", form={}
    ),
    ("GET", "/registry/devices/{device_id}/enrol"): Call("GET", "/registry/devices/{gate_b}/enrol"),
    ("POST", "/registry/devices/{device_id}/enrol"): Call(
        "POST", "/registry/devices/{gate_b}/enrol", form={"minutes": "5"}
    ),
    ("POST", "/registry/devices/{device_id}/enrol/stop"): Call(
        "POST", "/registry/devices/{gate_b}/enrol/stop", form={}
    ),
    ("POST", "/registry/enrol/{capture_id}/assign"): Call(
        "POST", "/registry/enrol/{capture_b}/assign", form={"person_id": "P0001"}
    ),
    ("POST", "/alerts/notify/targets/{target_id}/test"): Call(
        "POST", "/alerts/notify/targets/{target_b}/test", form={}
    ),
    ("POST", "/alerts/notify/targets/{target_id}/delete"): Call(
        "POST", "/alerts/notify/targets/{target_b}/delete", form={}
    ),
    ("POST", "/api/v1/people/{person_id}/flags"): Call(
        "POST", "/api/v1/people/P0007/flags", json={"flag": "lives_alone", "active": "0"}
    ),
    ("POST", "/api/v1/people/{person_id}/contact"): Call(
        "POST", "/api/v1/people/P0007/contact", json={"phone": "13800000007", "address": "x"}
    ),
    ("POST", "/api/v1/closures/{closure_id}/delete"): Call(
        "POST", "/api/v1/closures/{closure_b}/delete", json={}
    ),
}

# Routes that name B's object in the query or body (same rule: 403/404, nothing of B shown).
NAMED: dict[tuple[str, str], Call] = {
    ("POST", "/api/v1/visits"): Call(
        "POST", "/api/v1/visits", json={"person_id": "P0007", "note": "x"}
    ),
    ("POST", "/api/v1/registry/people"): Call(
        "POST", "/api/v1/registry/people", json={"display_name": "新人", "site_id": "{site_b}"}
    ),
    ("POST", "/api/v1/registry/cards"): Call(
        "POST", "/api/v1/registry/cards", json={"card": "04DDEEFF", "person_id": "P0007"}
    ),
    ("POST", "/registry/people"): Call(
        "POST", "/registry/people", form={"display_name": "新人", "site_id": "{site_b}"}
    ),
    ("POST", "/registry/people/import"): Call(
        "POST",
        "/registry/people/import",
        # A site of B, and B's person (P0007, 长者7) renamed: neither the name nor more shows.
        form={
            "text": "person_id,display_name,site_id\nP0099,新人,{site_b}\nP0007,新名,{site_b}",
            "action": "import",
        },
    ),
    ("GET", "/api/v1/overview"): Call("GET", f"/api/v1/overview?area={AREA_B}"),
    ("GET", "/api/v1/overview/stream"): Call("GET", f"/api/v1/overview/stream?area={AREA_B}"),
    ("GET", "/api/v1/occupancy"): Call("GET", "/api/v1/occupancy?site={site_b}"),
    ("GET", "/api/v1/stream"): Call("GET", "/api/v1/stream?site={site_b}"),
    ("GET", "/api/v1/reports/monthly"): Call(
        "GET", f"/api/v1/reports/monthly?area={AREA_B}&month={{month}}"
    ),
    ("GET", "/api/v1/reports/monthly.csv"): Call(
        "GET", f"/api/v1/reports/monthly.csv?area={AREA_B}&month={{month}}"
    ),
    ("GET", "/api/v1/reports/monthly.xlsx"): Call(
        "GET", f"/api/v1/reports/monthly.xlsx?area={AREA_B}&month={{month}}"
    ),
    ("GET", "/reports"): Call("GET", f"/reports?area={AREA_B}&month={{month}}"),
    ("GET", "/reports/meals"): Call("GET", f"/reports/meals?area={AREA_B}&month={{month}}"),
    ("GET", "/api/v1/reports/meals"): Call(
        "GET", f"/api/v1/reports/meals?area={AREA_B}&month={{month}}"
    ),
    ("GET", "/api/v1/reports/meals.csv"): Call(
        "GET", f"/api/v1/reports/meals.csv?area={AREA_B}&month={{month}}"
    ),
    ("GET", "/api/v1/reports/meals.xlsx"): Call(
        "GET", f"/api/v1/reports/meals.xlsx?area={AREA_B}&month={{month}}"
    ),
    # A notification target on B's area (A's manager may not set one there).
    # A closure of B's area (A's manager may only close their own areas).
    ("POST", "/api/v1/closures"): Call(
        "POST", "/api/v1/closures", json={"area": AREA_B, "start_day": "2026-02-16"}
    ),
    ("POST", "/alerts/notify/targets"): Call(
        "POST",
        "/alerts/notify/targets",
        form={"area": AREA_B, "channel": "webhook", "address": "http://127.0.0.1:9/x"},
    ),
    # A county's subsidy rates: finance or an admin of that county (A's manager: not visible).
    ("PUT", "/api/v1/reports/subsidy"): Call(
        "PUT", "/api/v1/reports/subsidy", json={"county": "dali/dalishi", "category": "助餐"}
    ),
    ("POST", "/reports/subsidy"): Call(
        "POST", "/reports/subsidy", form={"county": "dali/dalishi", "category": "助餐"}
    ),
}

# Lists, searches, exports and pages: what A asks (aimed at B where a filter allows it).
LISTS: dict[tuple[str, str], list[str]] = {
    ("GET", "/"): ["/"],
    ("GET", "/api/v1/overview"): ["/api/v1/overview", "/api/v1/overview?q=周城"],
    ("GET", "/api/v1/occupancy"): ["/api/v1/occupancy"],
    ("GET", "/api/v1/alerts"): [
        "/api/v1/alerts",
        "/api/v1/alerts?site={site_b}",
        "/api/v1/alerts?state=closed",
    ],
    ("GET", "/api/v1/alerts/counts"): ["/api/v1/alerts/counts"],
    ("GET", "/api/v1/visits/due"): ["/api/v1/visits/due"],
    ("GET", "/alerts"): ["/alerts", "/alerts?site={site_b}"],
    ("GET", "/alerts/visits"): ["/alerts/visits"],
    ("GET", "/alerts/notify"): ["/alerts/notify"],
    ("GET", "/alerts/closures"): ["/alerts/closures"],
    ("GET", "/api/v1/closures"): ["/api/v1/closures"],
    ("GET", "/api/v1/registry/people"): [
        "/api/v1/registry/people?per_page=200",
        "/api/v1/registry/people?q=P0007",
        "/api/v1/registry/people?q=长者",
        "/api/v1/registry/people?site={site_b}",
    ],
    ("GET", "/api/v1/registry/people.csv"): [
        "/api/v1/registry/people.csv",
        "/api/v1/registry/people.csv?q=P000",
    ],
    ("GET", "/api/v1/registry/cards"): [
        "/api/v1/registry/cards?per_page=200",
        "/api/v1/registry/cards?q=04A1B2",
        "/api/v1/registry/cards?site={site_b}",
    ],
    ("GET", "/api/v1/registry/devices"): [
        "/api/v1/registry/devices?per_page=200",
        "/api/v1/registry/devices?q={gate_b}",
    ],
    ("GET", "/registry"): ["/registry"],
    ("GET", "/registry/people"): ["/registry/people", "/registry/people?q=长者"],
    ("GET", "/registry/people/import"): ["/registry/people/import"],
    ("GET", "/registry/cards"): ["/registry/cards", "/registry/cards?q=04A1B2"],
    ("GET", "/registry/devices"): ["/registry/devices"],
    ("GET", "/reports"): [f"/reports?area={AREA_A}&month={{month}}"],
    ("GET", "/api/v1/reports/monthly"): [f"/api/v1/reports/monthly?area={AREA_A}&month={{month}}"],
    ("GET", "/api/v1/reports/monthly.csv"): [
        f"/api/v1/reports/monthly.csv?area={AREA_A}&month={{month}}"
    ],
    ("GET", "/api/v1/reports/monthly.xlsx"): [
        f"/api/v1/reports/monthly.xlsx?area={AREA_A}&month={{month}}"
    ],
    ("GET", "/reports/meals"): [f"/reports/meals?area={AREA_A}&month={{month}}"],
    ("GET", "/reports/subsidy"): ["/reports/subsidy"],
    ("GET", "/api/v1/reports/meals"): [f"/api/v1/reports/meals?area={AREA_A}&month={{month}}"],
    ("GET", "/api/v1/reports/meals.csv"): [
        f"/api/v1/reports/meals.csv?area={AREA_A}&month={{month}}"
    ],
    ("GET", "/api/v1/reports/meals.xlsx"): [
        f"/api/v1/reports/meals.xlsx?area={AREA_A}&month={{month}}"
    ],
}
