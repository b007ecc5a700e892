"""Apply MqttSettings (credentials, TLS, reconnect backoff) to a paho client."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from warmcard.settings import MqttSettings


def configure_client(client: mqtt.Client, settings: MqttSettings) -> None:
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    # paho's loop thread reconnects by itself; these bound its backoff.
    client.reconnect_delay_set(min_delay=1, max_delay=30)
