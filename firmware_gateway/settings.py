"""The kiosk gateway's one settings object (TOML file plus WARMCARD_* environment)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from warmcard.contract import DeviceConfig
from warmcard.ids import DeviceId
from warmcard.settings import MqttSettings, TomlSettings


class GatewaySettings(TomlSettings):
    device_id: DeviceId
    reader: str = "sim:"
    data_dir: Path = Path("/var/lib/warmcard")
    # The key that seals the roster/config cache (kiosk.sealed); None: systemd's credential
    # `cache-key` (warmcard-kiosk.service), else a key made in data_dir (demo, tests).
    cache_key_file: Path | None = None
    min_free_bytes: int = 50 * 1024 * 1024  # below this the kiosk refuses taps, visibly
    heartbeat_s: float = 30.0
    pinmap: Path | None = None  # None: the pin map shipped in hardware/pinmap.toml
    gpio: bool = False  # drive LEDs and buzzer through gpiozero
    relay_pulse_s: float = 0.0  # door/light relay pulse on a successful tap; 0 = no relay
    mqtt: MqttSettings = MqttSettings()
    # Used until the cloud's retained config arrives (then cached in data_dir).
    initial_config: DeviceConfig | None = None
    # The on-site screen: a page on 127.0.0.1:<port> for Chromium in kiosk mode; 0/None: no screen.
    screen_port: int | None = Field(default=8765, ge=0, le=65535)
    site_name: str = ""  # shown on the screen; the wire carries only the site id
    # Spoken prompts: clips from `warmcard voice render --out DIR`; None: silent.
    voice_dir: Path | None = None
    # The player and its arguments; e.g. add "-D", "plughw:CARD=Headphones" to pick the output.
    voice_player: list[str] = Field(default_factory=lambda: ["aplay", "-q"])

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"
