# mypy: allow-untyped-defs
"""A courtyard head (院长) in headless Chromium, against the real app on real Mosquitto and
InfluxDB with a real Kiosk: an account granted one site lands on that site, live."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from playwright.sync_api import Browser, Dialog

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from cloud_ingest.registry.names import initials
from kiosk.feedback import LogFeedback
from kiosk.policy import MSG_ENROLLING, MSG_UNKNOWN, Outcome
from kiosk.screen import compose
from tests.support.console import (
    FAST_HASHER,
    LiveConsole,
    add_user,
    browser_login,
    kiosk,
    live_console,
    logged_in,
)
from tests.support.ingest import wait_for

XIZHOU = "dali/dalishi/xizhou"
ZHOUCHENG = "dali/dalishi/zhoucheng"


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[LiveConsole]:
    with live_console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) as running:
        yield running


def test_a_head_granted_one_site_lands_on_it_live(
    browser: Browser, console: LiveConsole, mosquitto: Any, shots: Path
) -> None:
    site_a, site_b = console.ids["site_a"], console.ids["site_b"]
    db = console.service.settings.console_db
    add_user(db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    with kiosk(console, console.ids["gate_a"], mosquitto.port) as (_, reader):
        page = browser_login(browser, console.url, "head-a")
        page.locator("#conn[data-state=live]").wait_for(timeout=10_000)
        row = page.locator(f'#sites tr[data-site="{site_a}"]')
        row.wait_for(timeout=10_000)
        assert page.locator("#sites tr[data-site]").count() == 1  # only their courtyard
        assert "喜洲幸福小院" in page.inner_text("#trail")
        assert row.get_attribute("data-present") == "0"

        reader.tap("04A1B201")  # P0001 arrives at the gate: shown without reloading
        page.locator(f'#sites tr[data-site="{site_a}"][data-present="1"]').wait_for(timeout=10_000)
        page.locator('[data-stat="present"]', has_text="1 / 40").first.wait_for()
        page.screenshot(path=str(shots / "console-head-overview.png"), full_page=True)
        assert page.locator("#conn").get_attribute("data-state") == "live"
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

    # The API and its stream answer for the site's own path; a neighbour's path stays 404.
    with closing(logged_in(console.url, "head-a")) as client:
        doc = client.get("/api/v1/overview").json()
        assert doc["total"] == 1 and doc["scope"] == f"{XIZHOU}/{site_a}"
        assert doc["rollup"]["scope"]["name_zh"] == "喜洲幸福小院"
        assert doc["rollup"]["scope"]["level"] == "site"
        with client.stream("GET", f"/api/v1/overview/stream?area={XIZHOU}/{site_a}") as s:
            assert s.status_code == 200
        r = client.get(f"/api/v1/overview?area={ZHOUCHENG}/{site_b}")
        assert r.status_code == 404


def test_a_head_of_two_sites_sees_both_and_no_other(console: LiveConsole) -> None:
    site_a, site_b = console.ids["site_a"], console.ids["site_b"]
    db = console.service.settings.console_db
    add_user(db, "head-ab", Role.VIEWER, f"{XIZHOU}/{site_a}")
    with closing(logged_in(console.url, "root-admin")) as admin:
        assert admin.get("/api/v1/overview").json()["total"] == 2
    store = AccountStore(db, lambda: 1_700_000_000.0, FAST_HASHER)
    store.grant("head-ab", Role.VIEWER, f"{ZHOUCHENG}/{site_b}")
    store.close()
    with closing(logged_in(console.url, "head-ab")) as client:
        doc = client.get("/api/v1/overview").json()
        assert doc["total"] == 2
        children = {c["path"]: c for c in doc["rollup"]["children"]}
        assert children[f"{XIZHOU}/{site_a}"]["name_zh"] == "喜洲幸福小院"
        assert children[f"{ZHOUCHENG}/{site_b}"]["level"] == "site"
        assert doc["rollup"]["scope"]["sites"] == 2
        assert client.get(f"/api/v1/overview?area={XIZHOU}").status_code == 404


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "秀桂玉凤兰英淑春金德华珍芳明福荣"


def forty_names() -> list[str]:
    """40 names whose pinyin initials differ, so each can be found by its initials alone."""
    names: list[str] = []
    seen: set[str] = set()
    for s in SURNAMES:
        for a in GIVEN:
            for b in GIVEN[::-1]:
                name = s + a + b
                if a != b and initials(name) not in seen and len(names) < 40:
                    seen.add(initials(name))
                    names.append(name)
    return names


def test_a_head_enrols_forty_elders_by_the_loop(
    browser: Browser, console: LiveConsole, mosquitto: Any, shots: Path
) -> None:
    site_a, gate = console.ids["site_a"], console.ids["gate_a"]
    add_user(console.service.settings.console_db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    people = [(f"N{i + 1:04d}", name) for i, name in enumerate(forty_names())]
    page = browser_login(browser, console.url, "head-a", path="/registry/people")
    started = time.monotonic()
    # The 40 rows pasted from a sheet (tab-separated, as Excel copies them), previewed, imported.
    sheet = "person_id\tdisplay_name\tsite_id\n" + "".join(
        f"{pid}\t{name}\t{site_a}\n" for pid, name in people
    )
    with page.expect_navigation():
        page.click("#import-link")
    page.fill("#import-form textarea[name=text]", sheet)
    with page.expect_navigation():
        page.click("#import-preview")
    assert page.locator("#preview tr[data-person]").count() == 40
    with page.expect_navigation():
        page.click("#import-commit")
    assert page.inner_text("#import-done") == "已导入 40 人"
    clicks = 3
    imported_s = time.monotonic() - started
    uids = [f"04E1{i:02X}0A" for i in range(40)]

    with kiosk(console, gate, mosquitto.port) as (gateway, reader):
        page.goto(console.url + "/registry/devices")
        started = time.monotonic()
        with page.expect_navigation():
            page.click(f'#devices tr[data-device="{gate}"] a')
        page.fill("#enrol-start input[name=minutes]", "30")
        with page.expect_navigation():
            page.click("#enrol-start button")
        clicks += 2
        page.locator("#enrol-state", has_text="录入中").wait_for()
        for i, (uid, (person_id, name)) in enumerate(zip(uids, people, strict=True)):
            reader.tap(uid)
            box = page.locator("#captures .capture", has_text=uid)
            box.wait_for(timeout=15_000)
            # By name, by pinyin initials, by id: the three ways a head looks someone up.
            typed = (name, initials(name), person_id)[i % 3]
            box.locator("input.pick").fill(typed)
            box.locator(f'button.pick-person[data-person="{person_id}"]').click()
            clicks += 1
            page.locator(f'#captures [data-assigned="{person_id}"]', has_text=uid).wait_for()
            if i == 2:
                page.screenshot(path=str(shots / "console-head-enrol.png"), full_page=True)
        seconds = time.monotonic() - started

        # The kiosk knows all forty cards offline, from the roster ingest republished.
        def knows_all() -> bool:
            roster = gateway.roster
            return roster is not None and set(uids) <= {e.card_uid for e in roster.entries}

        wait_for(knows_all)

        # A card given out meanwhile (another tab): picking someone asks before moving it.
        reader.tap("04E1FF0B")
        box = page.locator("#captures .capture", has_text="04E1FF0B")
        box.wait_for(timeout=15_000)
        moved = api_assign(console, "04E1FF0B", "P0003")
        assert moved == 200
        asked: list[str] = []

        def answer(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept()

        page.once("dialog", answer)
        box.locator("input.pick").fill("长者4")
        box.locator('button.pick-person[data-person="P0004"]').click()
        page.locator('#captures [data-assigned="P0004"]').wait_for()
        assert asked == ["此卡属于 长者3 (P0003)，是否转移？"]
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

    # Every assignment is in the audit log, made by the head.
    with closing(logged_in(console.url, "root-admin")) as admin:
        rows = admin.get(
            "/api/v1/audit", params={"user": "head-a", "action": "enrol", "per_page": 500}
        ).json()["items"]
    assigned = [r for r in rows if r["object_kind"] == "card" and r["status"] == 200]
    assert len(assigned) == 41
    # The transfer says from whom to whom.
    details = [r["detail"] for r in assigned]
    details = [json.loads(d) if isinstance(d, str) else d for d in details]
    (moved,) = [d for d in details if d.get("card") == "04E1FF0B"]
    assert moved["person"] == "P0004" and moved["moved_from"] == "P0003", moved
    print(
        f"\n40 elders pasted, previewed and imported in {imported_s:.1f} s (3 clicks); "
        f"enrolled by the loop in {seconds:.1f} s ({seconds / 40:.1f} s each), "
        f"{clicks - 3} clicks ({(clicks - 5) / 40:.0f} per elder)"
    )
    assert seconds < 40 * 10


def api_assign(console: LiveConsole, uid: str, person_id: str) -> int:
    """Give a card to a person from another session (as the root administrator)."""
    with closing(logged_in(console.url, "root-admin")) as admin:
        csrf = admin.get("/api/v1/me").json()["csrf_token"]
        r = admin.post(
            "/api/v1/registry/cards",
            json={"card": uid, "person_id": person_id},
            headers={"X-CSRF-Token": csrf},
        )
        return r.status_code


def test_a_sheet_with_bad_rows_writes_nothing_and_names_every_problem(
    browser: Browser, console: LiveConsole, shots: Path
) -> None:
    site_a, site_b = console.ids["site_a"], console.ids["site_b"]
    typo = site_a.replace("site-a", "sit-a")  # a letter short: no such site
    add_user(console.service.settings.console_db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    page = browser_login(browser, console.url, "head-a", path="/registry/people/import")
    # Pasted from a sheet (tab-separated, as Excel copies); line 1 is the header.
    bad = (
        "person_id\tdisplay_name\tsite_id\trole\n"
        f"N0001\t杨丽华\t{site_a}\t\n"
        f"N0002\t杨丽\t{typo}\t\n"  # a mistyped site
        f"P0007\t王五\t{site_a}\t\n"  # the id of 长者7, an elder of Zhoucheng township
        f"N0003\t\t{site_a}\t\n"  # no name
        f"N0004\t赵明\t{site_a}\tboss\n"  # no such role
        f"N0001\t杨丽\t{site_a}\t\n"  # the same id twice
    )
    page.fill("#import-form textarea[name=text]", bad)
    with page.expect_navigation():
        page.click("#import-preview")
    assert page.inner_text("#import-problems") == "5 处问题，未写入"
    rows = page.locator("#problems tr[data-line]")
    assert [rows.nth(i).get_attribute("data-line") for i in range(5)] == ["3", "4", "5", "6", "7"]
    assert [rows.nth(i).inner_text() for i in range(5)] == [
        f"第 3 行：院 {typo} 不存在或不在您的区域 "
        f"line 3: site {typo} does not exist or is outside your areas",
        "第 4 行：编号 P0007 已被其他院的长者使用 "
        "line 4: person_id P0007 is taken by a person outside your areas",
        "第 5 行：姓名为空 line 5: display_name is empty",
        "第 6 行：角色 'boss' 须为 elder 或 staff（默认 elder） "
        "line 6: role 'boss' must be elder or staff (default elder)",
        "第 7 行：编号 N0001 与第 2 行重复 line 7: person_id N0001 already on line 2",
    ]
    # Nothing of the other township shows: not the elder's name, nor their courtyard.
    html = page.content()
    assert [m for m in ("长者7", site_b, "周城", "Zhoucheng") if m in html] == []
    # The row that passed is shown; the sheet stays in the box to be fixed; no import yet.
    assert page.locator("#preview tr[data-person]").count() == 1
    assert page.locator('#preview tr[data-person="N0001"]').count() == 1
    assert page.input_value("#import-form textarea[name=text]") == bad
    assert page.locator("#import-commit").count() == 0  # nothing to import until it is right
    page.screenshot(path=str(shots / "console-head-import.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # the problems fit a phone too
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 860})
    registry = console.service.registry
    ids = ["N0001", "N0002", "N0003", "N0004", "P0007"]
    assert registry.people_homes(ids) == {"P0007": ("长者7", site_b)}

    # The sheet fixed in the box: previewed, then imported, all of it.
    fixed = (
        bad.replace(typo, site_a)
        .replace("P0007\t王五", "N0005\t王五")
        .replace("N0003\t\t", "N0003\t李桂兰\t")
        .replace("boss", "staff")
        .replace(f"N0001\t杨丽\t{site_a}\t\n", "")
    )
    page.fill("#import-form textarea[name=text]", fixed)
    with page.expect_navigation():
        page.click("#import-preview")
    assert page.locator("#problems").count() == 0
    assert page.locator("#preview tr[data-person]").count() == 5
    with page.expect_navigation():
        page.click("#import-commit")
    assert page.inner_text("#import-done") == "已导入 5 人"
    homes = registry.people_homes([*ids, "N0005"])
    assert homes == {
        "N0001": ("杨丽华", site_a),
        "N0002": ("杨丽", site_a),
        "N0003": ("李桂兰", site_a),
        "N0004": ("赵明", site_a),
        "N0005": ("王五", site_a),
        "P0007": ("长者7", site_b),
    }

    # More rows as an .xlsx upload: previewed (new and updated rows), then imported.
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["person_id", "display_name", "site_id", "role"])
    sheet.append(["N0006", "杨丽英", site_a, "elder"])
    sheet.append(["N0002", "杨丽", site_a, "elder"])
    sheet.append(["P0001", "长者一", site_a, "elder"])  # an existing elder renamed
    xlsx = console.tmp / "new-elders.xlsx"
    book.save(xlsx)
    page.goto(console.url + "/registry/people/import")
    page.set_input_files("#import-form input[name=file]", str(xlsx))
    with page.expect_navigation():
        page.click("#import-preview")
    assert page.locator("#preview tr[data-person]").count() == 3
    assert "更新" in page.inner_text('#preview tr[data-person="P0001"]')
    assert "新增" in page.inner_text('#preview tr[data-person="N0006"]')
    with page.expect_navigation():
        page.click("#import-commit")
    assert page.inner_text("#import-done") == "已导入 3 人"
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()

    # Importing a row of a site outside the head's courtyard answers 404 and writes nothing;
    # the answer reads exactly as for a site that does not exist: nothing tells the two apart.
    with closing(logged_in(console.url, "head-a")) as api:
        assert api.get("/api/v1/registry/people?q=N000").json()["total"] == 6
        csrf = api.get("/api/v1/me").json()["csrf_token"]

        def imported(site: str) -> httpx.Response:
            sheet = f"person_id,display_name,site_id\nN0009,甲,{site_a}\nN0010,乙,{site}\n"
            return api.post(
                "/registry/people/import",
                data={"csrf_token": csrf, "action": "import", "text": sheet},
            )

        elsewhere, nowhere = imported(site_b), imported("no-such-site")
        assert (elsewhere.status_code, nowhere.status_code) == (404, 404)
        assert elsewhere.text.replace(site_b, "…") == nowhere.text.replace("no-such-site", "…")
        assert "周城" not in elsewhere.text
        assert api.get("/api/v1/registry/people?q=N0009").json()["total"] == 0


def test_moving_a_held_card_and_deactivating_ask_first(
    browser: Browser, console: LiveConsole
) -> None:
    site_a = console.ids["site_a"]
    add_user(console.service.settings.console_db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    page = browser_login(browser, console.url, "head-a", path="/registry/people/P0002")
    # P0001's card typed on P0002's page: the console asks, naming the holder, before moving.
    page.fill("#assign-card input[name=card]", "04:A1:B2:01")
    with page.expect_navigation():
        page.click("#assign-card button")
    assert page.inner_text("#move-question") == "此卡属于 长者1 (P0001)，是否转移？"
    with page.expect_navigation():
        page.click("#move-card button")
    assert page.url == console.url + "/registry/people/P0002"
    assert "04A1B201" in page.inner_text("#cards")

    # Deactivating asks too: dismissed, the card stays in use; accepted, it is taken out.
    asked: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def respond(dialog: Dialog) -> None:
            asked.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return respond

    card = page.locator('#cards tr[data-card="04A1B201"]')
    page.once("dialog", answer(False))
    card.locator("button").click()
    page.wait_for_timeout(300)
    assert page.url == console.url + "/registry/people/P0002" and card.locator("button").count()
    page.once("dialog", answer(True))
    with page.expect_navigation():
        card.locator("button").click()
    assert asked == ["停用卡 04A1B201？停用后刷此卡视为未登记的卡。"] * 2
    assert page.locator('#cards tr[data-card="04A1B201"] button').count() == 0  # out of use
    assert not console.service.registry.query(
        "SELECT active FROM cards WHERE card_uid = '04A1B201'"
    )[0][0]
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()

    # Who did both is in the audit log.
    with closing(logged_in(console.url, "root-admin")) as admin:
        rows = admin.get("/api/v1/audit", params={"user": "head-a", "per_page": 500}).json()
    done = {(r["action"], r["object_kind"], r["status"]) for r in rows["items"]}
    assert ("edit", "person", 303) in done and ("edit", "card", 303) in done
    # And what: the card moved from whom to whom, the card taken out of use.
    said = {
        (r["object_kind"], r["object_id"], json.dumps(json.loads(r["detail"]), sort_keys=True))
        for r in rows["items"]
        if r["status"] == 303
    }
    moved = {"card": "04A1B201", "moved_from": "P0001", "person": "P0002"}
    assert ("person", "P0002", json.dumps(moved, sort_keys=True)) in said, said
    assert ("card", "04A1B201", json.dumps({"person": "P0002"})) in said, said


def test_the_kiosk_says_enrolling_while_its_enrol_window_is_open(
    console: LiveConsole, mosquitto: Any
) -> None:
    site_a, gate = console.ids["site_a"], console.ids["gate_a"]
    add_user(console.service.settings.console_db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    with (
        kiosk(console, gate, mosquitto.port) as (gateway, reader),
        closing(logged_in(console.url, "head-a")) as api,
    ):
        feedback = gateway.feedback
        assert isinstance(feedback, LogFeedback)
        reader.tap("04E2000A")  # no enrol window: the usual answer
        wait_for(lambda: len(feedback.shown) == 1)
        assert feedback.shown[-1] == (Outcome.UNKNOWN, MSG_UNKNOWN)

        csrf = api.get("/api/v1/me").json()["csrf_token"]
        r = api.post(
            f"/api/v1/registry/devices/{gate}/enrol",
            json={"minutes": 5},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 200
        # The retained config now carries the window's end; the kiosk takes it within seconds.
        wait_for(lambda: gateway.config is not None and gateway.config.enrol_until_us > 0)
        reader.tap("04E2000B")
        wait_for(lambda: len(feedback.shown) == 2)
        assert feedback.shown[-1] == (Outcome.UNKNOWN, MSG_ENROLLING)
        screen = compose(Outcome.UNKNOWN, MSG_ENROLLING, None)
        assert screen["title_zh"].startswith("登记中") and "未登记" not in str(screen)
        # The console still captures the card for the enrol page.
        wait_for(
            lambda: any(
                c["card_uid"] == "04E2000B"
                for c in api.get(f"/api/v1/registry/devices/{gate}/enrol").json()["captures"]
            )
        )

        r = api.delete(f"/api/v1/registry/devices/{gate}/enrol", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        wait_for(lambda: gateway.config is not None and gateway.config.enrol_until_us == 0)
        reader.tap("04E2000C")
        wait_for(lambda: len(feedback.shown) == 3)
        assert feedback.shown[-1] == (Outcome.UNKNOWN, MSG_UNKNOWN)
