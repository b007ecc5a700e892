"""A fictional Dali for bench/dali_day.py: sites, kiosks, people, cards, flags and a day of taps.

Everything comes from one seed, so two runs with the same arguments intend the same figures.
The day is planned in site hours (07:00-18:00); bench/dali_day.py maps it onto wall time.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmcard.command.demo import write_csv_tables

# The 12 counties and cities of Dali (path segment, 中文, English).
COUNTIES = [
    ("dali-city", "大理市", "Dali City"),
    ("yangbi", "漾濞县", "Yangbi"),
    ("xiangyun", "祥云县", "Xiangyun"),
    ("binchuan", "宾川县", "Binchuan"),
    ("midu", "弥渡县", "Midu"),
    ("nanjian", "南涧县", "Nanjian"),
    ("weishan", "巍山县", "Weishan"),
    ("yongping", "永平县", "Yongping"),
    ("yunlong", "云龙县", "Yunlong"),
    ("eryuan", "洱源县", "Eryuan"),
    ("jianchuan", "剑川县", "Jianchuan"),
    ("heqing", "鹤庆县", "Heqing"),
]
TOWNSHIPS_PER_COUNTY = 9  # Dali has about 110 townships
OFFLINE_COUNTY = "yunlong"  # its network is down in the morning (see OUTAGE_H)
OUTAGE_H = (7.0, 13.5)  # site hours during which the offline county's kiosks hold their taps
DAY_H = (7.0, 18.0)  # opening to closing, site time
LARGE_WEIGHT = 10  # a town canteen draws this many times the people of a village courtyard
SURNAMES = "杨李赵段张王何苏董尹杜施罗陈字"
GIVEN = [
    "桂英", "秀兰", "玉珍", "凤仙", "兴华", "国强", "文清", "金花",
    "丽芬", "建国", "福寿", "春梅", "德明", "淑芳", "永昌", "银花",
]  # fmt: skip


@dataclass(frozen=True)
class Scale:
    sites: int = 1663
    kiosks: int = 3300
    people: int = 22_000
    large: int = 40  # town canteens of ~100 meals a day


@dataclass
class Site:
    site_id: str
    township: str  # area path
    name_zh: str
    name_en: str
    canteen: bool
    large: bool
    elders: list[str] = field(default_factory=list)
    staff: str | None = None

    @property
    def county(self) -> str:
        return self.township.split("/")[1]

    @property
    def gate(self) -> str:
        return f"{self.site_id}-gate"

    @property
    def canteen_device(self) -> str:
        return f"{self.site_id}-canteen"


@dataclass(frozen=True)
class Tap:
    """One planned tap; `hour` is site time, `send_hour` when its kiosk gets it out."""

    hour: float
    send_hour: float
    device: str
    site_id: str
    kind: str
    card: str
    person: str | None = None
    meal_period: str | None = None
    manual: bool = False
    witness: str | None = None
    auto: bool = False
    duplicate: bool = False  # QoS 1 redelivers it: the same message is published twice


@dataclass
class Seed:
    sites: list[Site]
    cards: dict[str, str]  # person -> card uid
    names: dict[str, str]
    lives_alone: set[str]
    taps: list[Tap]
    attending: set[str]

    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.site_id == site_id)

    def meals_per_site(self) -> dict[str, int]:
        meals = Counter(t.site_id for t in self.taps if t.kind == "meal" and not t.duplicate)
        return {s.site_id: meals[s.site_id] for s in self.sites if s.canteen}

    def arrivals_per_site(self) -> dict[str, int]:
        seen = {(t.site_id, t.person) for t in self.taps if t.kind == "check_in"}
        per = Counter(site for site, _ in seen)
        return {s.site_id: per[s.site_id] for s in self.sites}

    def kinds(self) -> Counter[str]:
        return Counter(t.kind for t in self.taps if not t.duplicate)

    def visits_due(self) -> set[str]:
        """Flagged elders not seen today (flagged days ago, no earlier taps)."""
        return self.lives_alone - self.attending

    def present_at(self, hour: float, *, sent_by: float | None = None) -> int:
        """People inside at `hour` (site time); with `sent_by`, only taps the cloud had by then."""
        n = 0
        for t in self.taps:
            if t.kind not in ("check_in", "check_out") or t.duplicate or t.hour > hour:
                continue
            if sent_by is not None and t.send_hour > sent_by:
                continue
            n += 1 if t.kind == "check_in" else -1
        return n


def _card(rng: random.Random, used: set[str], prefix: str = "04", size: int = 6) -> str:
    while True:
        uid = prefix + "".join(f"{rng.randrange(256):02X}" for _ in range(size))
        if uid not in used:
            used.add(uid)
            return uid


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


def make_seed(scale: Scale = Scale(), seed: int = 2026) -> Seed:
    rng = random.Random(seed)
    townships = [  # site i is in county i % 12, so a small scale has every county too
        (f"dali/{c}/{c}-t{t:02d}", zh, en)
        for t in range(1, TOWNSHIPS_PER_COUNTY + 1)
        for c, zh, en in COUNTIES
    ]
    canteens = scale.kiosks - scale.sites  # every site has a gate; these also have a canteen
    if not 0 <= canteens <= scale.sites:
        raise ValueError("kiosks must be between sites and twice the sites")
    sites: list[Site] = []
    for i in range(scale.sites):
        path, county_zh, county_en = townships[i % len(townships)]
        t = path.rsplit("-t", 1)[1]
        site_id = f"{path.split('/')[1]}-t{t}-v{i // len(townships) + 1:03d}"
        large = i < scale.large
        kind_zh, kind_en = ("幸福食堂", "canteen") if large else ("幸福小院", "courtyard")
        sites.append(
            Site(
                site_id,
                path,
                f"{county_zh}{t}镇第{i // len(townships) + 1}村{kind_zh}",
                f"{county_en} T{t} village {i // len(townships) + 1} {kind_en}",
                canteen=i < canteens,
                large=large,
            )
        )
    used: set[str] = set()
    cards: dict[str, str] = {}
    names: dict[str, str] = {}
    n = 0

    def person(site: Site) -> str:
        nonlocal n
        n += 1
        pid = f"p{n:06d}"
        cards[pid] = _card(rng, used)
        names[pid] = rng.choice(SURNAMES) + rng.choice(GIVEN)
        return pid

    for s in sites:
        if s.canteen:
            s.staff = person(s)
    weights = [LARGE_WEIGHT if s.large else 1 for s in sites]
    for s in sites:  # every site has at least one elder
        s.elders.append(person(s))
    for s in rng.choices(sites, weights, k=scale.people - n):
        s.elders.append(person(s))
    lives_alone = {p for s in sites for p in s.elders if rng.random() < 0.12}
    taps, attending = _plan_day(rng, sites, cards, used)
    return Seed(sites, cards, names, lives_alone, taps, attending)


def _plan_day(
    rng: random.Random, sites: list[Site], cards: dict[str, str], used: set[str]
) -> tuple[list[Tap], set[str]]:
    """Arrivals, three meals, departures, forgotten cards, repeats, unknown cards, an outage."""
    taps: list[Tap] = []
    attending: set[str] = set()
    close = DAY_H[1] - 1 / 60

    def send(site: Site, hour: float) -> float:
        if site.county == OFFLINE_COUNTY and OUTAGE_H[0] <= hour < OUTAGE_H[1]:
            return OUTAGE_H[1]
        return hour

    def add(site: Site, hour: float, device: str, kind: str, **kw: Any) -> None:
        tap = Tap(hour, send(site, hour), device, site.site_id, kind, **kw)
        taps.append(tap)
        if rng.random() < 0.005:
            taps.append(Tap(**{**tap.__dict__, "duplicate": True}))

    for s in sites:
        for p in s.elders:
            if rng.random() >= (0.78 if s.large else 0.62):
                continue
            attending.add(p)
            card = cards[p]
            arrive = _clip(rng.gauss(8.6, 0.6), DAY_H[0] + 0.05, 11.0)
            leave = _clip(rng.gauss(16.0, 0.8), max(arrive + 0.5, 13.6), close - 0.1)
            add(s, arrive, s.gate, "check_in", card=card, person=p)
            if s.canteen:
                meals = []
                if arrive < 8.3 and rng.random() < 0.3:
                    meals.append(("breakfast", arrive + 0.1))
                if rng.random() < 0.92:
                    meals.append(("lunch", _clip(rng.gauss(12.0, 0.25), 11.3, 12.8)))
                if rng.random() < 0.2:
                    meals.append(("dinner", _clip(rng.gauss(17.3, 0.12), 17.0, 17.7)))
                    leave = max(leave, 17.8)
                for period, hour in meals:
                    meal = {"card": card, "person": p, "meal_period": period}
                    if rng.random() < 0.03:  # forgot the card: staff record it by hand
                        witness = cards[s.staff or ""]
                        add(s, hour, s.canteen_device, "meal", manual=True, witness=witness, **meal)
                        continue
                    add(s, hour, s.canteen_device, "meal", **meal)
                    if rng.random() < 0.03:  # tapped again: the kiosk says "already served"
                        add(s, hour + 2 / 60, s.canteen_device, "meal_repeat", **meal)
            if rng.random() < 0.05:  # left without tapping: the kiosk checks out at closing
                add(s, close, s.gate, "check_out", card=card, person=p, auto=True)
            else:
                add(s, leave, s.gate, "check_out", card=card, person=p)
        for _ in range(rng.choice((0, 0, 1, 2))):  # a visitor's bus card, a neighbour's card
            add(s, rng.uniform(8.0, 16.0), s.gate, "unknown_card", card=_card(rng, used, "08", 3))
    taps.sort(key=lambda t: (t.hour, t.device))
    return taps, attending


def write_csvs(folder: Path, seed: Seed, hours: dict[str, str]) -> dict[str, Path]:
    """The registry's CSV files (docs/registry-csv.md) and the areas and flags files."""
    folder.mkdir(parents=True, exist_ok=True)
    flagged = sorted(seed.lives_alone)
    site_cols = ["site_id", "name_zh", "name_en", "tz", "capacity", *hours]
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "sites": (
            site_cols,
            [
                [s.site_id, s.name_zh, s.name_en, "Asia/Shanghai", 150 if s.large else 40]
                + [hours[k] if s.canteen or k in ("opening", "closing") else "" for k in hours]
                for s in seed.sites
            ],
        ),
        "devices": (
            ["device_id", "site_id", "mode", "debounce_s"],
            [[s.gate, s.site_id, "entrance", 10] for s in seed.sites]
            + [[s.canteen_device, s.site_id, "canteen", 10] for s in seed.sites if s.canteen],
        ),
        "people": (
            ["person_id", "display_name", "site_id", "role"],
            [[p, seed.names[p], s.site_id, "elder"] for s in seed.sites for p in s.elders]
            + [[s.staff, seed.names[s.staff], s.site_id, "staff"] for s in seed.sites if s.staff],
        ),
        "cards": (["card_uid", "person_id", "active"], [[c, p, 1] for p, c in seed.cards.items()]),
        "flags": (["person_id", "flag", "active"], [[p, "lives_alone", 1] for p in flagged]),
        "areas": (["path", "name_zh", "name_en"], _area_rows(seed)),
    }  # fmt: skip
    return write_csv_tables(folder, tables)


def _area_rows(seed: Seed) -> list[list[Any]]:
    rows: list[list[Any]] = [["dali", "大理州", "Dali Prefecture"]]
    rows += [[f"dali/{c}", zh, en] for c, zh, en in COUNTIES]
    for c, zh, en in COUNTIES:
        for t in range(1, TOWNSHIPS_PER_COUNTY + 1):
            rows.append([f"dali/{c}/{c}-t{t:02d}", f"{zh}第{t}乡镇", f"{en} township {t}"])
    rows += [[f"{s.township}/{s.site_id}", s.name_zh, s.name_en] for s in seed.sites]
    return rows
