"""Ask kiosks to re-send seq ranges that reconciliation found missing (ResendCommand downlink)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Protocol

from cloud_ingest.ops.reconcile import Gap
from warmcard.contract import MAX_RESEND_RANGE, ResendCommand, command_topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...


def commands_for(gaps: Iterable[Gap], request_prefix: str | None = None) -> list[ResendCommand]:
    """One command per gap, split into MAX_RESEND_RANGE pieces; request ids are unique."""
    prefix = request_prefix or f"rc-{uuid.uuid4().hex[:12]}"
    commands: list[ResendCommand] = []
    for gap in gaps:
        start = gap.from_seq
        while start <= gap.to_seq:
            end = min(gap.to_seq, start + MAX_RESEND_RANGE - 1)
            commands.append(
                ResendCommand(
                    request_id=f"{prefix}-{len(commands) + 1}",
                    device_id=gap.device_id,
                    from_seq=start,
                    to_seq=end,
                )
            )
            start = end + 1
    return commands


def publish_commands(publisher: Publisher, commands: Iterable[ResendCommand]) -> int:
    """QoS 1, not retained (see ResendCommand); returns how many were published."""
    n = 0
    for command in commands:
        publisher.publish(command_topic(command.device_id), command.to_bytes(), 1, False)
        log.info(
            "resend %s requested from %s: seq %d-%d",
            command.request_id,
            command.device_id,
            command.from_seq,
            command.to_seq,
        )
        n += 1
    return n
