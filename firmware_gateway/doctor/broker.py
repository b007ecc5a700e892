"""The doctor's broker check: an MQTT 5 connection made as the kiosk would make it; then, on the
same connection, whether the cloud has registered the device (its retained config and roster)."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

from firmware_gateway.doctor.deps import DoctorDeps
from firmware_gateway.doctor.results import PROVISION_FIX, CheckResult, Status
from firmware_gateway.settings import GatewaySettings
from warmcard.contract import DeviceConfig, Roster, config_topic, parse_model, roster_topic
from warmcard.rejections import InvalidPayload

REGISTRATION = "云端登记 Registered in the cloud"


def check_broker(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """Connect with MQTT 5 as the kiosk would, and report the CONNACK."""
    return check_cloud(settings, deps, registration=False)[0]


def check_cloud(
    settings: GatewaySettings, deps: DoctorDeps, *, registration: bool = True
) -> list[CheckResult]:
    """The broker check, then (if it passed) whether the cloud's config and roster arrive."""
    downlink: dict[str, bytes] = {}
    connected = _connect(settings, deps, downlink if registration else None)
    if not registration or connected.status is not Status.PASS:
        return [connected]
    return [connected, _registration(settings, downlink)]


def _connect(
    settings: GatewaySettings, deps: DoctorDeps, downlink: dict[str, bytes] | None
) -> CheckResult:
    """Connect as the kiosk would; with `downlink`, also collect its retained config/roster."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    name = "服务器 Broker"
    cfg = settings.mqtt
    where = f"{cfg.host}:{cfg.port}"
    answer: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"] = reason

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if downlink is not None:
            downlink[message.topic] = bytes(message.payload)

    # Its own client id, so on an open broker the running kiosk is not kicked off. The production
    # broker (use_username_as_clientid) replaces it with the device's username: there the check
    # briefly takes over the kiosk's connection, which reconnects by itself and resends from its
    # outbox (clean start; nothing is lost).
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.device_id}-doctor",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_timeout = deps.broker_timeout_s
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    try:
        if cfg.tls:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        deadline = time.monotonic() + deps.broker_timeout_s
        while "reason" not in answer and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        reason = answer.get("reason")
        if downlink is not None and reason is not None and not reason.is_failure:
            # Both are retained: a registered device gets them at once on subscribing.
            topics = (config_topic(settings.device_id), roster_topic(settings.device_id))
            client.subscribe([(topic, 1) for topic in topics])
            deadline = time.monotonic() + deps.broker_timeout_s
            while len(downlink) < 2 and time.monotonic() < deadline:
                client.loop(timeout=0.1)
    except socket.gaierror:
        return CheckResult(
            name,
            Status.FAIL,
            f"找不到服务器 cannot resolve {cfg.host}",
            "检查配置 [mqtt] host 和网络/DNS check [mqtt] host and the network/DNS",
        )
    except ssl.SSLError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: TLS 失败 TLS failed: {exc}",
            "检查 [mqtt] ca_file 和时钟（证书要求时间正确）check [mqtt] ca_file and the clock",
        )
    except ConnectionRefusedError:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: 连接被拒绝 connection refused",
            "确认服务器在运行、端口对 check the broker is running and the port "
            "(1883 明文 plain, 8883 TLS) in [mqtt]",
        )
    except OSError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: 连不上 unreachable: {exc}",
            "检查网络和防火墙 check the network and firewall; 断网时刷卡照常记录 taps are kept "
            "while offline and sent later",
        )
    finally:
        client.disconnect()
        sock = client.socket()
        if sock is not None:
            sock.close()
    reason = answer.get("reason")
    if reason is None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: {deps.broker_timeout_s:.0f} 秒内没有应答 no CONNACK in "
            f"{deps.broker_timeout_s:.0f} s",
            "端口可能不是 MQTT the port may not be MQTT; "
            "检查 [mqtt] port 和 tls check port and tls",
        )
    if reason.is_failure:
        fix = (
            PROVISION_FIX
            if reason.value in (0x86, 0x87, 0x8C)  # bad user/password, not authorised, bad auth
            else "检查服务器设置 check the broker's configuration"
        )
        return CheckResult(name, Status.FAIL, f"{where}: 服务器拒绝 refused: {reason}", fix)
    user = cfg.username or "匿名 anonymous"
    return CheckResult(name, Status.PASS, f"{where}: 已连接 connected (MQTT 5) as {user}")


def _registration(settings: GatewaySettings, downlink: dict[str, bytes]) -> CheckResult:
    """What the cloud sent this device: its config (site, mode) and its site's roster."""
    device = settings.device_id
    fix = (
        f"在云端登记本机 register this kiosk in the cloud: devices.csv 加一行 add a line "
        f"`{device},<site_id>,entrance|canteen`, 然后 then `warmcard import --devices "
        "devices.csv` (docs/registry-csv.md); 服务器的 ACL 要让本机读它的 config 和 roster "
        "the broker's ACL must let the device read its config and roster"
    )
    raw_config = downlink.get(config_topic(device))
    raw_roster = downlink.get(roster_topic(device))
    if raw_config is None:
        return CheckResult(
            REGISTRATION,
            Status.FAIL,
            f"云端没有 {device} 的配置，未登记 "
            f"the cloud sent no config for {device}: not registered",
            fix,
        )
    try:
        config = parse_model(DeviceConfig, raw_config)
        roster = parse_model(Roster, raw_roster) if raw_roster is not None else None
    except InvalidPayload as exc:
        return CheckResult(
            REGISTRATION,
            Status.FAIL,
            f"云端的配置或名单无效 the cloud's config or roster is invalid: {exc}",
            "升级本机软件 update this kiosk: `git pull`, then re-run install-kiosk.sh",
        )
    site = f"{config.site_name} ({config.site_id})" if config.site_name else config.site_id
    if roster is None:
        return CheckResult(
            REGISTRATION,
            Status.FAIL,
            f"站点 site {site}, 但没有名单 but no roster arrived",
            "确认云端 ingest 在运行 check that the cloud's ingest service is running",
        )
    cached = all((settings.data_dir / f).exists() for f in ("config.json", "roster.json"))
    return CheckResult(
        REGISTRATION,
        Status.PASS,
        f"站点 site {site}, {config.mode.value}, 名单 roster {len(roster.entries)} 张卡 cards; "
        + (
            "本机已缓存 cached on this kiosk"
            if cached
            else "服务运行后缓存 cached once the service runs"
        ),
    )
