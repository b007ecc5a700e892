"""Fuzz parse_event: any input must give a TapEvent that keeps every invariant, or InvalidPayload.

    python bench/fuzz_contract.py -n 100000 --seed 1           # seeded structure-aware mutator
    python bench/fuzz_contract.py --engine atheris -runs=100000  # coverage-guided, if installed

Prints counts per reason, accepted count, payloads/s and parse_event throughput on valid
events. Any other exception, a broken invariant or a payload slower than --slow-ms is saved to
--out (payload bytes plus topic) and makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmcard.contract import (
    EARLIEST_EVENT,
    MAX_FUTURE_SKEW_S,
    MAX_SEQ,
    MEAL_KINDS,
    Kind,
    MealPeriod,
    TapEvent,
    device_from_topic,
    events_topic,
    parse_event,
)
from warmcard.ids import DEVICE_ID_RE, EVENT_CARD_RE, EVENT_ID_RE, PERSON_ID_RE
from warmcard.rejections import MAX_DETAIL_CHARS, InvalidPayload
from warmcard.timestamps import format_ts, new_event_id, parse_ts
from warmcard.wirejson import MAX_PAYLOAD_BYTES

RECEIVED_US = 1_795_933_086_123_456  # the cloud's clock for every fuzzed payload
EARLIEST_US = int(EARLIEST_EVENT.timestamp()) * 1_000_000
LATEST_US = RECEIVED_US + MAX_FUTURE_SKEW_S * 1_000_000
# Characters that must never survive into an accepted identifier (line protocol, logs, topics).
FORBIDDEN = frozenset(" ,=\"'\\\n\r\t/+#\x00")


def check_event(event: TapEvent, topic: str, received_us: int = RECEIVED_US) -> None:
    """Assert every invariant an accepted event must keep; AssertionError names the broken one."""
    assert type(event) is TapEvent
    assert event.v == 1
    assert EVENT_ID_RE.fullmatch(event.event_id), event.event_id
    assert DEVICE_ID_RE.fullmatch(event.device_id), event.device_id
    assert event.device_id == device_from_topic(topic) and topic == events_topic(event.device_id)
    assert type(event.seq) is int and 1 <= event.seq <= MAX_SEQ
    assert EVENT_CARD_RE.fullmatch(event.card_uid), event.card_uid  # a UID or (v1.3) a token
    assert type(event.kind) is Kind
    assert (event.kind in MEAL_KINDS) == (type(event.meal_period) is MealPeriod)
    if event.kind is Kind.UNKNOWN_CARD:
        assert event.person_id is None
    else:
        assert event.person_id is not None and PERSON_ID_RE.fullmatch(event.person_id)
    assert type(event.auto) is bool and type(event.clock_synced) is bool
    assert not event.auto or event.kind is Kind.CHECK_OUT
    ts_us = parse_ts(event.ts)
    assert format_ts(ts_us) == event.ts
    assert EARLIEST_US <= ts_us <= received_us + MAX_FUTURE_SKEW_S * 1_000_000
    for text in (event.event_id, event.device_id, event.card_uid, event.ts, event.person_id or ""):
        assert text.isascii() and text.isprintable() and not FORBIDDEN & set(text), text
    raw = event.to_bytes()
    assert len(raw) <= MAX_PAYLOAD_BYTES
    assert parse_event(raw, topic, received_us=received_us) == event


def check_rejection(error: InvalidPayload) -> None:
    assert error.detail.isprintable() and len(error.detail) <= MAX_DETAIL_CHARS
    error.detail.encode("utf-8")


# ---------------------------------------------------------------------------- generation

UNICODE_TRICKS = [
    "\ufeff",  # BOM / zero-width no-break space
    "\u200b",  # zero-width space
    "\u202e",  # right-to-left override
    "\u2028",  # line separator
    "\u0301",  # combining acute
    "\uff10",  # full-width 0
    "\uff21",  # full-width A
    "\u0410",  # Cyrillic A, a homoglyph
    "\u0660",  # Arabic-Indic zero
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "\U0001f600",
    "\x00",
    "\x7f",
    "\n",
    "王大妈",
]
HUGE_NUMBERS: list[Any] = [
    2**53,
    2**63,
    2**64,
    -(2**63),
    10**40,
    10**41,
    10**300,
    1e308,
    -0.0,
    5e-324,
    0.1,
]
RAW_NUMBER_TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"9" * 60, b"-0"]
FIELDS = [
    "v",
    "event_id",
    "device_id",
    "seq",
    "ts",
    "card_uid",
    "kind",
    "meal_period",
    "person_id",
    "auto",
    "clock_synced",
]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))


def valid_event(rng: random.Random) -> dict[str, Any]:
    """A random valid event as a JSON-ready dict."""
    device = rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 20))
    )
    ts_us = rng.randint(EARLIEST_US, LATEST_US)
    kind = rng.choice(list(Kind))
    event: dict[str, Any] = {
        "v": 1,
        "event_id": new_event_id(ts_us),
        "device_id": device,
        "seq": rng.choice([1, MAX_SEQ, rng.randint(1, MAX_SEQ), rng.randint(1, 10_000)]),
        "ts": format_ts(ts_us),
        "card_uid": _hex(rng, rng.choice([8, 14, 20])),
        "kind": kind.value,
    }
    if kind in MEAL_KINDS:
        event["meal_period"] = rng.choice(list(MealPeriod)).value
    if kind is not Kind.UNKNOWN_CARD:
        event["person_id"] = "p-" + "".join(
            rng.choice("abcdefABCDEF0123456789_-") for _ in range(rng.randint(1, 30))
        )
    if kind is Kind.CHECK_OUT and rng.random() < 0.3:
        event["auto"] = True
    if rng.random() < 0.3:
        event["clock_synced"] = rng.random() < 0.5
    return event


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, sometimes nested past the limit, sometimes unicode-tricky."""
    choice = rng.randrange(10 if depth < 6 else 7)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.choice([0, 1, -1, rng.randint(-(2**70), 2**70), *HUGE_NUMBERS])
    if choice == 3:
        return rng.uniform(-1e9, 1e9)
    if choice in (4, 5, 6):
        return "".join(
            rng.choice(UNICODE_TRICKS) if rng.random() < 0.2 else chr(rng.randint(32, 126))
            for _ in range(rng.randint(0, 20))
        )
    if choice in (7, 8):
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_json_key(rng): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_json_key(rng: random.Random) -> str:
    return rng.choice([*FIELDS, "name", "site_id", "", "Seq", rng.choice(UNICODE_TRICKS)])


def mutate_string(rng: random.Random, text: str) -> str:
    op = rng.randrange(8)
    pos = rng.randint(0, len(text))
    if op == 0:
        return text[:pos] + rng.choice(UNICODE_TRICKS) + text[pos:]
    if op == 1:
        return text[:pos] + rng.choice(sorted(FORBIDDEN)) + text[pos:]
    if op == 2:
        return text.lower() if rng.random() < 0.5 else text.upper()
    if op == 3:
        return text[:pos]
    if op == 4:
        return text + text[pos:]
    if op == 5:  # ASCII digits and letters to their full-width twins
        return "".join(
            chr(ord(c) + 0xFEE0) if c.isalnum() and rng.random() < 0.3 else c for c in text
        )
    if op == 6:
        return text.replace("-", rng.choice([":", "", "--", " "]))
    return text.replace(text[pos : pos + 1], chr(rng.randint(0, 0x2FFF)), 1)


def mutate_event(rng: random.Random, event: dict[str, Any]) -> bytes:
    """Structure-aware mutations on a valid event, then serialised (sometimes raw)."""
    event = dict(event)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(FIELDS)
        op = rng.randrange(9)
        if op == 0:
            event.pop(key, None)
        elif op == 1:
            event[key] = random_json(rng)
        elif op == 2 and isinstance(event.get(key), str):
            event[key] = mutate_string(rng, event[key])
        elif op == 3:
            event[key] = rng.choice(HUGE_NUMBERS)
        elif op == 4:
            event[random_json_key(rng)] = random_json(rng)
        elif op == 5:  # wrap a value in containers
            value = event.get(key)
            for _ in range(rng.randint(1, 8)):
                value = [value] if rng.random() < 0.5 else {"x": value}
            event[key] = value
        elif op == 6:
            ts_us = rng.randint(EARLIEST_US, LATEST_US)
            event["ts"] = rng.choice(
                [ts_us // 10**6, ts_us // 1000, ts_us * 1000, str(ts_us // 10**6),
                 format_ts(ts_us)[:-1], format_ts(ts_us).replace("Z", "+08:00"),
                 format_ts(rng.randint(0, 2**62) % 253_402_300_800_000_000)]
            )  # fmt: skip
        elif op == 7:
            event["kind"] = rng.choice([*list(Kind), "teleport", 1])
        else:
            event["meal_period"] = rng.choice([*list(MealPeriod), None, "brunch"])
    raw = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:  # a duplicate key: json.dumps cannot write one
        key = rng.choice(FIELDS)
        raw = (
            raw[:-1] + b', "' + key.encode() + b'": ' + json.dumps(random_json(rng)).encode() + b"}"
        )
    if rng.random() < 0.1:  # a bare token json.dumps would not write
        raw = raw.replace(b'"seq": ', b'"seq": ' + rng.choice(RAW_NUMBER_TOKENS) + b', "_": ', 1)
    return raw


def mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    """Byte-level mutations of a serialised event."""
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2:
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            data[pos:pos] = data[pos : pos + rng.randint(1, 64)] * rng.randint(1, 80)
        elif op == 4:
            del data[pos:]
        elif op == 5:
            data[0:0] = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"[", b" ", b"\x00"])
        elif op == 6:
            data[pos:pos] = rng.choice([b"[" * 50, b"{" * 50, b'"', b"\\", b"\\ud800", b","])
        else:
            data[pos:pos] = rng.choice(RAW_NUMBER_TOKENS)
    return bytes(data)


def random_topic(rng: random.Random, device: Any) -> str:
    if not isinstance(device, str) or rng.random() < 0.9:
        device = str(device) if rng.random() < 0.95 else "k-001"
    topic = events_topic(device)
    if rng.random() < 0.05:
        topic = rng.choice(
            [topic + "/x", topic.replace("events", "status"), "warmcard/v1/devices/+/events",
             topic.replace("v1", "v2"), mutate_string(rng, topic), "", "#"]
        )  # fmt: skip
    return topic


def payloads(seed: int) -> Iterator[tuple[bytes, str]]:
    """An endless, reproducible stream of (payload, topic)."""
    rng = random.Random(seed)
    while True:
        event = valid_event(rng)
        roll = rng.random()
        if roll < 0.10:
            raw = json.dumps(event).encode()
        elif roll < 0.55:
            raw = mutate_event(rng, event)
        elif roll < 0.80:
            raw = mutate_bytes(rng, json.dumps(event).encode())
        elif roll < 0.90:
            raw = json.dumps(random_json(rng)).encode("utf-8", "surrogatepass")
        elif roll < 0.97:
            raw = rng.randbytes(rng.choice([0, 1, 2, 16, 256, MAX_PAYLOAD_BYTES + 1]))
        else:
            n = rng.randint(5, 2000)
            raw = rng.choice(
                [b"[" * 10_000, b"[" * n + b"]" * n, b'{"a":' * (n // 3),
                 b'{"v":1,"a":' + b"[" * (n // 2) + b"]" * (n // 2) + b"}"]
            )  # fmt: skip
        yield raw, random_topic(rng, event.get("device_id"))


# ---------------------------------------------------------------------------- running


@dataclass
class Report:
    payloads: int = 0
    accepted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    slowest_ms: float = 0.0

    @property
    def per_second(self) -> float:
        return self.payloads / self.seconds if self.seconds else 0.0


def _save(out: Path, payload: bytes, topic: str, why: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(payload + topic.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    (out / f"crash-{name}.bin").write_bytes(payload)
    (out / f"crash-{name}.json").write_text(
        json.dumps({"topic": topic, "why": why}, ensure_ascii=True) + "\n"
    )
    return str(out / f"crash-{name}.bin")


Parser = Callable[..., TapEvent]


def fuzz_one(payload: bytes, topic: str, parse: Parser = parse_event) -> str:
    """'accepted' or the reason; raises whatever the parser or an invariant check raised."""
    try:
        event = parse(payload, topic, received_us=RECEIVED_US)
    except InvalidPayload as error:
        check_rejection(error)
        return error.reason.value
    check_event(event, topic)
    return "accepted"


def run(
    count: int,
    seed: int = 1,
    out: Path = Path("run/fuzz"),
    slow_ms: float = 100.0,
    parse: Parser = parse_event,
) -> Report:
    report = Report()
    clock: Callable[[], float] = time.perf_counter
    start = clock()
    for payload, topic in payloads(seed):
        if report.payloads >= count:
            break
        report.payloads += 1
        t0 = clock()
        try:
            outcome = fuzz_one(payload, topic, parse)
        except Exception as exc:  # the bug we are hunting: save it, keep going
            why = f"{type(exc).__name__}: {exc}"[:500]
            report.failures.append(f"{_save(out, payload, topic, why)}  {why}")
            continue
        took_ms = (clock() - t0) * 1000
        report.slowest_ms = max(report.slowest_ms, took_ms)
        if took_ms > slow_ms:
            why = f"slow: {took_ms:.1f} ms"
            report.failures.append(f"{_save(out, payload, topic, why)}  {why}")
        if outcome == "accepted":
            report.accepted += 1
        else:
            report.reasons[outcome] += 1
    report.seconds = clock() - start
    return report


def valid_throughput(count: int = 50_000, seed: int = 2) -> float:
    """parse_event calls per second on distinct valid events (ingest's hot path)."""
    rng = random.Random(seed)
    batch = []
    for _ in range(1000):
        event = valid_event(rng)
        batch.append(
            (json.dumps(event, separators=(",", ":")).encode(), events_topic(event["device_id"]))
        )
    start = time.perf_counter()
    for i in range(count):
        payload, topic = batch[i % 1000]
        parse_event(payload, topic, received_us=RECEIVED_US)
    return count / (time.perf_counter() - start)


def _atheris(argv: list[str]) -> int:
    import atheris  # optional: pip install '.[fuzz]' (x86-64 Linux wheels)

    def one(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        topic = events_topic("k-001") if provider.ConsumeBool() else provider.ConsumeUnicode(80)
        fuzz_one(provider.ConsumeBytes(MAX_PAYLOAD_BYTES + 1), topic)

    atheris.instrument_all()
    atheris.Setup(argv, one)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("run/fuzz"))
    parser.add_argument("--slow-ms", type=float, default=100.0)
    parser.add_argument("--engine", choices=["mutate", "atheris"], default="mutate")
    args, rest = parser.parse_known_args()
    if args.engine == "atheris":
        return _atheris([sys.argv[0], *rest])

    report = run(args.count, args.seed, args.out, args.slow_ms)
    print(f"payloads          {report.payloads}")
    print(f"accepted          {report.accepted}")
    print(f"rejected          {sum(report.reasons.values())}")
    for reason, n in sorted(report.reasons.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {reason:<18}{n}")
    print(f"seconds           {report.seconds:.2f}")
    print(f"payloads/s        {report.per_second:,.0f}")
    print(f"slowest payload   {report.slowest_ms:.2f} ms")
    print(f"valid events/s    {valid_throughput():,.0f}  (parse_event, one core)")
    print(f"failures          {len(report.failures)}")
    for line in report.failures[:20]:
        print(f"  {line}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
