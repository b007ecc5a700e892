"""Seed data for the demo: Dali courtyards, their kiosks, elders and warm cards (all fictional)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SURNAMES = "杨李赵段张王何苏董尹杜施罗陈字"
GIVEN = [
    "桂英", "秀兰", "玉珍", "凤仙", "兴华", "国强", "文清", "金花",
    "丽芬", "建国", "福寿", "春梅", "德明", "淑芳", "永昌", "银花",
    "家祥", "四妹", "有才", "树林",
]  # fmt: skip

# (site id, 中文名, English name, capacity)
SITES = [
    ("xizhou-zhoucheng", "喜洲镇周城村幸福小院", "Zhoucheng Village Courtyard, Xizhou", 60),
    ("wanqiao-zhonghe", "湾桥镇中和村幸福小院", "Zhonghe Village Courtyard, Wanqiao", 40),
    ("yinqiao-shuanglang", "银桥镇双阳村幸福小院", "Shuangyang Village Courtyard, Yinqiao", 45),
    ("dali-gucheng", "大理镇古城社区幸福食堂", "Old Town Community Canteen, Dali", 80),
    ("shuanglang-dajian", "双廊镇大建旁村幸福小院", "Dajianpang Village Courtyard, Shuanglang", 35),
    ("haidong-nanhu", "海东镇南村幸福小院", "Nancun Village Courtyard, Haidong", 30),
]


VILLAGE_LANES = ["北巷", "南巷", "中街", "东巷", "西巷"]
DUE_PER_SITE = 2  # elders living alone who stay home: due a visit from the start
FLAGGED_DAYS_AGO = (3, 5)  # flagged this many days before the demo starts


@dataclass
class SeedPerson:
    person_id: str
    display_name: str
    card_uid: str
    lives_alone_days: int | None = None  # flagged that many days ago; never taps
    phone: str = ""
    address: str = ""


@dataclass
class SeedSite:
    site_id: str
    name_zh: str
    name_en: str
    capacity: int
    people: list[SeedPerson] = field(default_factory=list)

    @property
    def entrance_device(self) -> str:
        return f"{self.site_id}-gate"

    @property
    def canteen_device(self) -> str:
        return f"{self.site_id}-canteen"


def card_uid(rng: random.Random) -> str:
    """A 7-byte NXP-style UID (first byte 0x04, the NXP manufacturer code)."""
    return "04" + "".join(f"{rng.randrange(256):02X}" for _ in range(6))


def make_seed(sites: int = 4, seed: int = 7) -> list[SeedSite]:
    rng = random.Random(seed)
    result = []
    for site_id, name_zh, name_en, capacity in SITES[:sites]:
        site = SeedSite(site_id, name_zh, name_en, capacity)
        for _ in range(rng.randrange(18, 30)):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            person_id = f"p-{rng.getrandbits(32):08x}"
            site.people.append(SeedPerson(person_id, name, card_uid(rng)))
        for n, person in enumerate(site.people[:DUE_PER_SITE]):
            person.lives_alone_days = FLAGGED_DAYS_AGO[n % len(FLAGGED_DAYS_AGO)]
            person.phone = f"138 {rng.randrange(10000):04d} {rng.randrange(10000):04d}"
            person.address = f"{name_zh.split('幸福')[0]}{rng.choice(VILLAGE_LANES)}{n + 1} 号"
        result.append(site)
    return result
