"""The settings base every deployable uses: a TOML file, overridden by WARMCARD_* environment."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from warmcard.errors import WarmcardError

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "change_me", "password", "secret"})


class SettingsError(WarmcardError):
    """The config file is missing, unreadable or invalid; the message names the field."""


def reject_placeholder(value: SecretStr | None) -> SecretStr | None:
    """Fail fast on a secret that was never filled in."""
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError("is a placeholder; set a real secret")
    return value


class MqttSettings(BaseModel):
    """How to reach the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30

    _no_placeholder = field_validator("password")(reject_placeholder)


class TomlSettings(BaseSettings):
    """Read with `load(path)`: values from the TOML file, each overridable by the environment."""

    model_config = SettingsConfigDict(env_prefix="WARMCARD_", env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: Path | str | None = None, **overrides: Any) -> Self:
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values = tomllib.loads(Path(path).read_text())
            except OSError as exc:
                raise SettingsError(f"cannot read config {path}: {exc.strerror}") from None
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"config {path} is not valid TOML: {exc}") from None
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise SettingsError(f"config {path or '(defaults)'}: {problems}") from None
