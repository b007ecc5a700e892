#!/usr/bin/env bash
# Installs (or updates) a Warmcard kiosk on Raspberry Pi OS bookworm. Idempotent: run it again
# after `git pull` or to change the broker; it only changes what differs.
#
#   sudo systemd/install-kiosk.sh --device-id dali-xz-001 --broker mqtt.example.org[:port] \
#        [--tls] [--reader pn532:/dev/serial0] [--mqtt-password-file FILE] [--no-gpio]
#
# --print-config renders /etc/warmcard/kiosk.toml to stdout and changes nothing (no root needed).
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/warmcard
CONF_DIR=/etc/warmcard
CONF="$CONF_DIR/kiosk.toml"
DATA_DIR=/var/lib/warmcard
UNIT=warmcard-kiosk.service

device_id="" broker="" tls=false reader="pn532:/dev/serial0" gpio=true
mqtt_username="" password_file="" print_config=false force_config=false start=true

die() { echo "install-kiosk: 错误 error: $*" >&2; exit 2; }
say() { echo "install-kiosk: $*"; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --device-id) device_id="${2:-}"; shift 2 ;;
        --broker) broker="${2:-}"; shift 2 ;;
        --tls) tls=true; shift ;;
        --reader) reader="${2:-}"; shift 2 ;;
        --mqtt-username) mqtt_username="${2:-}"; shift 2 ;;
        --mqtt-password-file) password_file="${2:-}"; shift 2 ;;
        --no-gpio) gpio=false; shift ;;
        --force-config) force_config=true; shift ;;
        --no-start) start=false; shift ;;
        --print-config) print_config=true; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done

# --- validate arguments before touching anything -------------------------------------------
is_placeholder() {
    case "${1,,}" in
        ""|*changeme*|*change-me*|*example*|*placeholder*|*your-*|*xxx*|*todo*|device-id|broker|host|localhost.localdomain) return 0 ;;
    esac
    return 1
}
[ -n "$device_id" ] || die "--device-id is required 需要设备编号"
[ -n "$broker" ] || die "--broker is required 需要服务器地址"
is_placeholder "$device_id" && die "device id '$device_id' is a placeholder; use this kiosk's real id 设备编号是占位符"
[[ "$device_id" =~ ^[a-z0-9][a-z0-9-]{1,62}$ ]] || die "device id '$device_id': lower-case letters, digits and '-' only (2-63) 设备编号格式不对"
broker_host="${broker%:*}"
broker_port="${broker##*:}"
[ "$broker_host" != "$broker" ] || broker_port=""
[ -n "$broker_port" ] || { $tls && broker_port=8883 || broker_port=1883; }
is_placeholder "$broker_host" && die "broker '$broker_host' is a placeholder; use the real broker host 服务器地址是占位符"
[[ "$broker_host" =~ ^[A-Za-z0-9.-]+$ ]] || die "broker host '$broker_host' is not a host name or IPv4 address"
[[ "$broker_port" =~ ^[0-9]+$ ]] && [ "$broker_port" -ge 1 ] && [ "$broker_port" -le 65535 ] \
    || die "broker port '$broker_port' is not a port number"
[[ "$reader" =~ ^(sim|pn532|libnfc|hid): ]] || die "reader '$reader' must start with sim:, pn532:, libnfc: or hid:"
[[ "$reader" != *'"'* && "$reader" != *'\'* ]] || die "reader must not contain quotes or backslashes"
[ -n "$mqtt_username" ] || mqtt_username="$device_id"
[[ "$mqtt_username" =~ ^[A-Za-z0-9._-]+$ ]] || die "MQTT username '$mqtt_username' has unusual characters"

credentials="# No MQTT password yet: run \`warmcard provision\`, or re-run with --mqtt-password-file."
if [ -n "$password_file" ]; then
    [ -r "$password_file" ] || die "cannot read $password_file"
    password="$(head -n1 "$password_file" | tr -d '\r\n')"
    is_placeholder "$password" && die "the MQTT password in $password_file is a placeholder"
    case "$password" in password|secret) die "the MQTT password in $password_file is a placeholder" ;; esac
    [[ "$password" != *'"'* && "$password" != *'\'* ]] || die "the MQTT password must not contain quotes or backslashes"
    credentials="username = \"$mqtt_username\"
password = \"$password\""
fi

render_config() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line//@DEVICE_ID@/$device_id}"
        line="${line//@READER@/$reader}"
        line="${line//@GPIO@/$gpio}"
        line="${line//@BROKER_HOST@/$broker_host}"
        line="${line//@BROKER_PORT@/$broker_port}"
        line="${line//@TLS@/$tls}"
        line="${line//@CREDENTIALS@/$credentials}"
        printf '%s\n' "$line"
    done < "$SRC/systemd/kiosk.toml.in"
}

if $print_config; then
    render_config
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 ..."
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || say "注意 warning: written for Raspberry Pi OS bookworm, this is '${VERSION_CODENAME:-unknown}'"

# --- Debian packages -----------------------------------------------------------------------
apt_packages=(python3-venv python3-pip libnfc6 libnfc-bin libfreefare0 sqlite3)
# gpiozero's default pin factory on bookworm (and the only one on the Pi 5) is lgpio; the
# package is in the Raspberry Pi OS archive, not in plain Debian.
apt-cache show python3-lgpio >/dev/null 2>&1 && apt_packages+=(python3-lgpio)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- user and groups -----------------------------------------------------------------------
for group in dialout gpio input; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! id warmcard >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin warmcard
fi
usermod -a -G dialout,gpio,input warmcard
install -d -o warmcard -g warmcard -m 0750 "$DATA_DIR"

# --- the package, in its own venv ------------------------------------------------------------
# --system-site-packages so the apt-installed lgpio binding is visible to gpiozero.
[ -x "$PREFIX/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX"
"$PREFIX/bin/python" -m pip install -q --upgrade "$SRC"

# --- config ------------------------------------------------------------------------------------
install -d -o root -g warmcard -m 0750 "$CONF_DIR"
new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
render_config > "$new_conf"
if [ ! -f "$CONF" ]; then
    install -o root -g warmcard -m 0640 "$new_conf" "$CONF"
    say "wrote $CONF"
elif cmp -s "$new_conf" "$CONF"; then
    say "$CONF unchanged"
elif $force_config; then
    cp -p "$CONF" "$CONF.bak"
    install -o root -g warmcard -m 0640 "$new_conf" "$CONF"
    say "replaced $CONF (old one in $CONF.bak)"
else
    say "注意 $CONF differs from the arguments and was kept; re-run with --force-config to replace it"
fi

# --- udev rules (stable reader names) and the Pi's UART ------------------------------------------
if ! cmp -s "$SRC/hardware/99-warmcard.rules" /etc/udev/rules.d/99-warmcard.rules; then
    install -m 0644 "$SRC/hardware/99-warmcard.rules" /etc/udev/rules.d/99-warmcard.rules
    udevadm control --reload-rules && udevadm trigger --action=add || true
fi
# The kernel's pn533_usb driver claims the ACR122U before libnfc can; keep it away.
modprobe_conf=/etc/modprobe.d/warmcard-blacklist-nfc.conf
if [[ "$reader" == libnfc:* ]] && [ ! -f "$modprobe_conf" ]; then
    printf 'blacklist pn533_usb\nblacklist pn533\nblacklist nfc\n' > "$modprobe_conf"
fi
if [[ "$reader" == *"/dev/serial0"* ]] && command -v raspi-config >/dev/null; then
    # Serial hardware on, login console off; takes effect after a reboot.
    if [ "$(raspi-config nonint get_serial_hw)" != 0 ] || [ "$(raspi-config nonint get_serial_cons)" != 1 ]; then
        raspi-config nonint do_serial_hw 0
        raspi-config nonint do_serial_cons 1
        say "UART enabled; 请重启 reboot before the reader can work"
    fi
fi

# --- the service ---------------------------------------------------------------------------
# Its journal namespace: the kiosk's logs kept 14 days (the unit's LogNamespace=warmcard).
install -m 0644 "$SRC/systemd/journald@warmcard.conf" /etc/systemd/journald@warmcard.conf
if ! cmp -s "$SRC/systemd/$UNIT" "/etc/systemd/system/$UNIT"; then
    install -m 0644 "$SRC/systemd/$UNIT" "/etc/systemd/system/$UNIT"
    systemctl daemon-reload
fi
systemctl enable "$UNIT" >/dev/null
if $start; then
    systemctl restart "$UNIT"
fi
say "done 完成. Check 检查: sudo -u warmcard $PREFIX/bin/warmcard doctor --config $CONF"
