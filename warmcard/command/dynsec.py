"""The broker's authorisation: Mosquitto's dynamic-security plugin, its config and its $CONTROL API.

Mosquitto 2.0's `acl_file` never refuses a SUBSCRIBE, so any device could join ingest's
shared-subscription group and swallow its share of the stream. The plugin checks subscriptions
(SUBACK 0x87), but has no `%u` patterns: each device gets a role of its own with literal topics.
Service roles are in deploy/mosquitto/dynsec-roles.json; docs/broker.md explains them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from warmcard.contract import (
    command_topic,
    config_topic,
    events_topic,
    roster_parts_filter,
    roster_topic,
    status_topic,
)
from warmcard.errors import WarmcardError

ADMIN_USER = "warmcard-admin"
ADMIN_ROLE = "warmcard-admin"
DEVICE_GROUP = "devices"
DEVICE_DENY_ROLE = "device-deny"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# Mosquitto 2.0.11's own hash: PBKDF2-SHA512 over a 12-byte salt (src/password_mosq.h).
_SALT_BYTES = 12
_ITERATIONS = 101
_WAIT_S = 10.0


class DynsecError(WarmcardError):
    """The broker's security plugin refused or did not answer; the message says what to do."""


@dataclass(frozen=True)
class Roles:
    """deploy/mosquitto/dynsec-roles.json: service roles and which usernames each one covers."""

    path: Path
    services: dict[str, re.Pattern[str]]
    default_access: dict[str, bool]
    roles: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> Roles:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise DynsecError(
                f"读不到角色文件 cannot read {path} ({exc.strerror}); install "
                "deploy/mosquitto/dynsec-roles.json there or pass --roles"
            ) from None
        return cls(
            path,
            {role: re.compile(rx) for role, rx in data["services"].items()},
            dict(data["defaultACLAccess"]),
            list(data["roles"]),
        )

    def service_role(self, username: str) -> str | None:
        """The role of a service user (e.g. ingest-3 -> ingest), None for anything else."""
        for role, rx in self.services.items():
            if rx.fullmatch(username):
                return role
        return None

    def reserved(self, name: str) -> bool:
        """Names a device may not take: a service's and the admin's."""
        return self.service_role(name) is not None or name == ADMIN_USER


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's stored form of a password (what `mosquitto_ctrl` would write)."""
    salt = salt or secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)
    return {
        "salt": base64.b64encode(salt).decode(),
        "password": base64.b64encode(digest).decode(),
        "iterations": _ITERATIONS,
    }


def device_role_name(device_id: str) -> str:
    return f"device-{device_id}"


def device_role(device_id: str) -> dict[str, Any]:
    """One device's role: its own topics, literally; everything else falls to `device-deny`."""
    acls = [
        {"acltype": "publishClientSend", "topic": events_topic(device_id), "allow": True},
        {"acltype": "publishClientSend", "topic": status_topic(device_id), "allow": True},
    ]
    for topic in (config_topic(device_id), roster_topic(device_id), command_topic(device_id)):
        acls.append({"acltype": "subscribeLiteral", "topic": topic, "allow": True})
        acls.append({"acltype": "publishClientReceive", "topic": topic, "allow": True})
    acls += roster_parts_acls(device_id)
    # Higher priority than the group's denials (client roles are checked first anyway).
    for acl in acls:
        acl["priority"] = 10
    return {"rolename": device_role_name(device_id), "acls": acls}


def roster_parts_acls(device_id: str) -> list[dict[str, Any]]:
    """The parts 2..n of a split roster (v1.2): `roster/+` under the device's own topics."""
    topic = roster_parts_filter(device_id)
    return [
        {"acltype": "subscribeLiteral", "topic": topic, "allow": True, "priority": 10},
        {"acltype": "publishClientReceive", "topic": topic, "allow": True, "priority": 10},
    ]


def ensure_device_role(control: Control, device_id: str) -> None:
    """Create the device's role; a role made before split rosters (v1.2) gets their topics."""
    answers = control.run(
        {"command": "createRole", **device_role(device_id)},
        tolerate=("Role already exists",),
    )
    if answers and answers[0].get("error"):
        control.run(
            *(
                {"command": "addRoleACL", "rolename": device_role_name(device_id), **acl}
                for acl in roster_parts_acls(device_id)
            ),
            tolerate=("ACL with this topic already exists",),
        )


def initial_config(roles: Roles, admin_password: str) -> dict[str, Any]:
    """The plugin's config file before first start: roles, the devices group, the admin."""
    return {
        "defaultACLAccess": roles.default_access,
        "clients": [
            {
                "username": ADMIN_USER,
                "textname": "warmcard provision",
                "roles": [{"rolename": ADMIN_ROLE}],
                **hash_password(admin_password),
            }
        ],
        "groups": [{"groupname": DEVICE_GROUP, "roles": [{"rolename": DEVICE_DENY_ROLE}]}],
        "roles": roles.roles,
    }


class Control:
    """A short admin session on the loopback listener that sends $CONTROL commands."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self._answers: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._connack: int | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=ADMIN_USER, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(ADMIN_USER, password)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_a: self._subscribed.set()
        client.on_message = self._on_message
        self.client = client
        try:
            client.connect(host, port)
        except OSError as exc:
            raise DynsecError(
                f"连不上消息服务器 cannot reach the broker at {host}:{port} ({exc}); is mosquitto "
                "running (systemctl status mosquitto)?"
            ) from None
        client.loop_start()
        if not self._subscribed.wait(_WAIT_S):
            self.close()
            code = "no answer" if self._connack is None else f"CONNACK {self._connack:#x}"
            raise DynsecError(
                f"管理员登录失败 the broker refused {ADMIN_USER} ({code}); check "
                "dynsec-admin.secret against the plugin's config (docs/broker.md)"
            )

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connack = rc.value
        if not rc.is_failure:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            answers = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._cond:
            self._answers += [a for a in answers if isinstance(a, dict)]
            self._cond.notify_all()

    def run(
        self, *commands: dict[str, Any], tolerate: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Send commands in one message; raise on any error not in `tolerate`; the answers."""
        key = uuid.uuid4().hex
        tagged = [{**c, "correlationData": f"{key}-{i}"} for i, c in enumerate(commands)]
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)

        def mine() -> list[dict[str, Any]]:
            return [a for a in self._answers if str(a.get("correlationData", "")).startswith(key)]

        with self._cond:
            self._cond.wait_for(lambda: len(mine()) >= len(tagged), _WAIT_S)
            answers = mine()
        if len(answers) < len(tagged):
            raise DynsecError(
                "安全插件无应答 no answer from the broker's dynamic-security plugin; check that "
                "mosquitto.conf loads mosquitto_dynamic_security.so (docs/broker.md)"
            )
        for answer in answers:
            error = answer.get("error")
            if error and error not in tolerate:
                raise DynsecError(
                    f"消息服务器拒绝 the broker refused {answer.get('command')}: {error}"
                )
        return answers

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
