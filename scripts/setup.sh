#!/usr/bin/env bash
# Installs everything Warmcard needs on a Debian machine, idempotently:
# the Debian packages (servers, libnfc, browser), then a virtualenv with the project in it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    mosquitto mosquitto-clients   # MQTT broker and its CLI tools (tests, bench)
    influxdb                      # InfluxDB 1.6 server: /write + InfluxQL
    libnfc-dev libnfc-bin         # libnfc, loaded by pynfc through ctypes
    libfreefare-dev               # pynfc loads libfreefare too
    sqlite3                       # the outbox and registry are SQLite; CLI for technicians
    postgresql                    # the shared store when several machines run the cloud (tests)
    systemd                       # systemd-analyze, to verify the units
    espeak-ng                     # renders the kiosk's spoken prompts (Mandarin voice) at setup
    alsa-utils                    # aplay plays them on the kiosk's speaker
    chromium                      # the kiosk screen in kiosk mode; headless page checks in tests
    fonts-noto-cjk                # Chinese on the screen (without it Chromium draws boxes)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp="$VENV/.warmcard-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    touch "$stamp"
fi
