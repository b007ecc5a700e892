"""The doctor's broker check: an MQTT 5 connection made as the kiosk would make it."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

from firmware_gateway.doctor.deps import DoctorDeps
from firmware_gateway.doctor.results import PROVISION_FIX, CheckResult, Status
from firmware_gateway.settings import GatewaySettings


def check_broker(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """Connect with MQTT 5 as the kiosk would, and report the CONNACK."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    name = "服务器 Broker"
    cfg = settings.mqtt
    where = f"{cfg.host}:{cfg.port}"
    answer: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"] = reason

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
