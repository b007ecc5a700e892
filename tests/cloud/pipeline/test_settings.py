"""Pipeline settings refuse what would weaken the broker's protection."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from cloud_ingest.pipeline.settings import PipelineSettings
from warmcard.settings import MqttSettings

MQTT = MqttSettings(username="ingest-1", password=SecretStr("p" * 32))
LINK = MqttSettings(username="downlink", password=SecretStr("q" * 32))


def test_a_guessable_share_group_is_refused_on_a_broker_with_users() -> None:
    """Issue #9.1: `ingest` (the old default) names the group any client could aim at."""
    with pytest.raises(ValidationError, match="share_group 'ingest' is guessable"):
        PipelineSettings(mqtt=MQTT, link_mqtt=LINK)
    ok = PipelineSettings(mqtt=MQTT, link_mqtt=LINK, share_group="ingest-3f9c0a7be21d44c6a1b2c3d4")
    assert ok.share_group.startswith("ingest-")
    # The open demo broker has no users: the default still serves there.
    assert PipelineSettings().share_group == "ingest"


def test_a_share_group_cannot_carry_topic_characters() -> None:
    for bad in ("a/b", "+", "#", ""):
        with pytest.raises(ValidationError):
            PipelineSettings(share_group=bad)
