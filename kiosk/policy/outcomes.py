"""The answer to one tap: its outcome, what to record, and the words the kiosk shows and says."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from warmcard.contract import Kind, MealPeriod


class Outcome(StrEnum):
    SUCCESS = "success"  # recorded: check-in, check-out or meal
    REPEAT = "repeat"  # the same card again within the debounce window: already recorded
    UNKNOWN = "unknown"  # card not on the roster: recorded for enrolment
    MEAL_REPEAT = "meal_repeat"  # a second meal in the same period: recorded, with a warning
    FAULT = "fault"  # not recorded (disk full, outbox error) or reader fault
    STAFF = "staff"  # a staff card at a canteen: the list to record a meal by hand opens


MSG_REPEAT = "已记录 Already recorded"
MSG_UNKNOWN = "未登记的卡，请找工作人员 Unknown card, please see staff"
# An unknown card while the console has this kiosk in enrol mode: it is being given out.
MSG_ENROLLING = "登记中，请在控制台选择老人 Being enrolled: pick the elder in the console"
MSG_NOT_CONFIGURED = "未配置 Not configured"
MSG_FAULT = "存储故障，未记录，请告知工作人员 Storage fault, not recorded: please tell staff"
MSG_DISK_FULL = "存储已满，未记录，请告知工作人员 Storage full, not recorded: please tell staff"
MSG_READER_FAULT = "读卡器故障，请告知工作人员 Reader fault: please tell staff"
MSG_NO_STAFF_CARD = "请先刷工作人员卡 Tap a staff card first"
MSG_NOT_ON_ROSTER = "不在本院名单上 Not on this site's roster"


@dataclass(frozen=True)
class Decision:
    """The answer to one tap: what to record (kind None: nothing) and what to show."""

    card_uid: str
    kind: Kind | None
    outcome: Outcome
    message: str
    person_id: str | None = None
    meal_period: MealPeriod | None = None
    auto: bool = False
    manual: bool = False  # recorded by staff from the list, without the elder's card
    witness_card: str | None = None  # the staff card that opened the list
