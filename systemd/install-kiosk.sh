#!/usr/bin/env bash
# Installs (or updates) a Warmcard kiosk on Raspberry Pi OS bookworm: the service, the on-site
# screen (Chromium full screen at login), the spoken prompts and the speaker. Idempotent: run it
# again after `git pull` or to change the broker; a second run changes nothing.
#
#   sudo systemd/install-kiosk.sh --device-id dali-xz-001 --broker mqtt.example.org[:port] \
#        [--tls] [--reader pn532:/dev/serial0] [--mqtt-password-file FILE] [--no-gpio] \
#        [--audio-device plughw:CARD=Headphones,DEV=0] [--no-screen] [--no-voice]
#
# The site's name on the screen comes from the registry (the device's config): nothing to type.
# --print-config renders /etc/warmcard/kiosk.toml to stdout and changes nothing (no root needed).
# --root DIR installs into DIR as if it were / (an image being prepared, or a test): nothing
# outside DIR is touched; packages, udev, raspi-config and starting the service are left out.
# --no-venv uses the `warmcard` command given by --warmcard (default: the one on PATH) instead
# of building /opt/warmcard, and links it there.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/warmcard
CONF_DIR=/etc/warmcard
CONF="$CONF_DIR/kiosk.toml"
DATA_DIR=/var/lib/warmcard
VOICE_DIR="$DATA_DIR/voice"
UNIT=warmcard-kiosk.service
SCREEN_BIN=/usr/local/bin/warmcard-screen
AUTOSTART=/etc/xdg/autostart/warmcard-screen.desktop
SCREEN_PORT=8765

device_id="" broker="" tls=false reader="pn532:/dev/serial0" gpio=true
mqtt_username="" password_file="" print_config=false force_config=false start=true
root="/" venv=true warmcard_cmd="" audio_device="" screen=true voice=true

die() { echo "install-kiosk: 错误 error: $*" >&2; exit 2; }
say() { echo "install-kiosk: $*"; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --device-id) device_id="${2:-}"; shift 2 ;;
        --broker) broker="${2:-}"; shift 2 ;;
        --tls) tls=true; shift ;;
        --reader) reader="${2:-}"; shift 2 ;;
        --mqtt-username) mqtt_username="${2:-}"; shift 2 ;;
        --mqtt-password-file) password_file="${2:-}"; shift 2 ;;
        --no-gpio) gpio=false; shift ;;
        --audio-device) audio_device="${2:-}"; shift 2 ;;
        --no-screen) screen=false; shift ;;
        --no-voice) voice=false; shift ;;
        --root) root="${2:-}"; shift 2 ;;
        --no-venv) venv=false; shift ;;
        --warmcard) warmcard_cmd="${2:-}"; shift 2 ;;
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
[ -z "$audio_device" ] || [[ "$audio_device" =~ ^[A-Za-z0-9_:=,.-]+$ ]] \
    || die "audio device '$audio_device': letters, digits and _:=,.- only (e.g. plughw:CARD=Headphones,DEV=0)"
[[ "$root" == /* ]] || die "--root must be an absolute path"
root="${root%/}"  # "" for the real root: every path below is "$root/..."

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

# The speaker: the card named by --audio-device, else the Pi's 3.5 mm jack, a USB speaker or
# HDMI, in that order, as ALSA lists them (plughw converts the clips' rate and format).
pick_audio_device() {
    [ -n "$audio_device" ] && { echo "$audio_device"; return; }
    local cards=/proc/asound/cards id=""
    if [ -z "$root" ] && [ -r "$cards" ]; then
        id="$(sed -n 's/^ *[0-9]\+ \[\([A-Za-z0-9_]*\) *\]:.*Headphones.*/\1/p' "$cards" | head -n1)"
        [ -n "$id" ] || id="$(sed -n 's/^ *[0-9]\+ \[\([A-Za-z0-9_]*\) *\]: USB-Audio.*/\1/p' "$cards" | head -n1)"
        [ -n "$id" ] || id="$(sed -n 's/^ *[0-9]\+ \[\([A-Za-z0-9_]*\) *\]:.*/\1/p' "$cards" | head -n1)"
    fi
    if [ -n "$id" ]; then echo "plughw:CARD=$id,DEV=0"; else echo "default"; fi
}
audio="$(pick_audio_device)"

render_config() {
    local line voice_lines="# voice_dir: none, this kiosk is silent (installed with --no-voice)"
    $voice && voice_lines="voice_dir = \"$VOICE_DIR\"
voice_player = [\"aplay\", \"-q\", \"-D\", \"$audio\"]"
    local port=$SCREEN_PORT
    $screen || port=0
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line//@DEVICE_ID@/$device_id}"
        line="${line//@READER@/$reader}"
        line="${line//@GPIO@/$gpio}"
        line="${line//@SCREEN_PORT@/$port}"
        line="${line//@VOICE@/$voice_lines}"
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
[ -d "$root/" ] || die "--root $root is not a directory"
if [ -r "$root/etc/os-release" ]; then
    . "$root/etc/os-release"
    [ "${VERSION_CODENAME:-}" = bookworm ] || say "注意 warning: written for Raspberry Pi OS bookworm, this is '${VERSION_CODENAME:-unknown}'"
fi
real_root() { [ -z "$root" ]; }

changed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# put PATH MODE OWNER GROUP < content: write $root/PATH only when content, mode or owner differ.
put() {
    local path="$1" mode="$2" owner="$3" group="$4" new="$work/put"
    cat > "$new"
    local target="$root$path" uid gid
    uid="$(id_of passwd "$owner")" gid="$(id_of group "$group")"
    if [ -f "$target" ] && cmp -s "$new" "$target" \
        && [ "$(stat -c '%a %u %g' "$target")" = "$(printf '%o %s %s' "$((8#$mode))" "$uid" "$gid")" ]; then
        return 0
    fi
    mkdir -p "$(dirname "$target")"
    install -m "$mode" -o "$uid" -g "$gid" "$new" "$target"
    say "wrote $path"
    changed=$((changed + 1))
}

# Numeric ids from the target's own passwd/group (under --root they are not the host's).
id_of() {
    local id
    id="$(awk -F: -v n="$2" '$1 == n { print $3; exit }' "$root/etc/$1")"
    [ -n "$id" ] || die "no $1 entry '$2' in $root/etc/$1"
    echo "$id"
}

dir() {  # dir PATH MODE OWNER GROUP
    local target="$root$1" uid gid
    uid="$(id_of passwd "$3")" gid="$(id_of group "$4")"
    if [ -d "$target" ] && [ "$(stat -c '%a %u %g' "$target")" = "$(printf '%o %s %s' "$((8#$2))" "$uid" "$gid")" ]; then
        return 0
    fi
    install -d -m "$2" -o "$uid" -g "$gid" "$target"
    say "made $1"
    changed=$((changed + 1))
}

# --- Debian packages -----------------------------------------------------------------------
if real_root; then
    apt_packages=(python3-venv python3-pip libnfc6 libnfc-bin libfreefare0 sqlite3)
    # gpiozero's default pin factory on bookworm (and the only one on the Pi 5) is lgpio; the
    # package is in the Raspberry Pi OS archive, not in plain Debian.
    apt-cache show python3-lgpio >/dev/null 2>&1 && apt_packages+=(python3-lgpio)
    # espeak-ng renders the prompts, aplay plays them.
    $voice && apt_packages+=(espeak-ng alsa-utils)
    if $screen; then
        # Raspberry Pi OS names the browser chromium-browser on older bookworm images.
        if apt-cache show chromium >/dev/null 2>&1; then apt_packages+=(chromium); else apt_packages+=(chromium-browser); fi
        apt_packages+=(curl fonts-noto-cjk)
    fi
    missing=()
    for pkg in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "apt: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
        changed=$((changed + 1))
    fi
else
    say "--root $root: Debian packages left to the image (espeak-ng, alsa-utils, chromium, libnfc6)"
fi

# --- user and groups -----------------------------------------------------------------------
# --prefix edits $root/etc/{passwd,group,shadow,gshadow} without chrooting into $root.
prefix=()
real_root || prefix=(--prefix "$root")
# audio: aplay on the speaker (ALSA devices are group audio).
for group in dialout gpio input audio; do
    if ! awk -F: -v n="$group" '$1 == n { f = 1 } END { exit !f }' "$root/etc/group"; then
        groupadd "${prefix[@]}" --system "$group"
        changed=$((changed + 1))
    fi
done
if ! awk -F: '$1 == "warmcard" { f = 1 } END { exit !f }' "$root/etc/passwd"; then
    useradd "${prefix[@]}" --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin warmcard
    say "user warmcard"
    changed=$((changed + 1))
fi
for group in dialout gpio input audio; do
    if ! awk -F: -v n="$group" '$1 == n && ("," $4 ",") ~ /,warmcard,/ { f = 1 } END { exit !f }' "$root/etc/group"; then
        usermod "${prefix[@]}" -a -G "$group" warmcard
        changed=$((changed + 1))
    fi
done
dir "$DATA_DIR" 0750 warmcard warmcard

# --- the package, in its own venv ------------------------------------------------------------
if $venv; then
    # --system-site-packages so the apt-installed lgpio binding is visible to gpiozero.
    [ -x "$root$PREFIX/bin/python" ] || python3 -m venv --system-site-packages "$root$PREFIX"
    if ! "$root$PREFIX/bin/python" -m pip install -q --upgrade "$SRC" 2>"$work/pip"; then
        cat "$work/pip" >&2
        die "pip could not install Warmcard into $PREFIX (network? see above)"
    fi
else
    [ -n "$warmcard_cmd" ] || warmcard_cmd="$(command -v warmcard || true)"
    [ -x "$warmcard_cmd" ] || die "--no-venv: no warmcard command found; pass --warmcard /path/to/warmcard"
    put "$PREFIX/bin/warmcard" 0755 root root < <(printf \
        '#!/bin/sh\n# The warmcard command installed outside this prefix (install-kiosk.sh --no-venv).\nexec %s "$@"\n' \
        "$warmcard_cmd")
fi
warmcard="$root$PREFIX/bin/warmcard"

# --- config ------------------------------------------------------------------------------------
dir "$CONF_DIR" 0750 root warmcard
render_config > "$work/kiosk.toml"
if [ ! -f "$root$CONF" ] || $force_config; then
    [ -f "$root$CONF" ] && ! cmp -s "$work/kiosk.toml" "$root$CONF" && cp -p "$root$CONF" "$root$CONF.bak"
    put "$CONF" 0640 root warmcard < "$work/kiosk.toml"
elif ! cmp -s "$work/kiosk.toml" "$root$CONF"; then
    say "注意 $CONF differs from the arguments and was kept; re-run with --force-config to replace it"
fi

# --- the key that seals the roster cache on the SD card (kiosk/sealed.py) ---------------------
# Made once and kept: a new key would make the cached roster unreadable until the broker's
# retained copy arrives. root-only; systemd hands it to the service (LoadCredential).
if [ ! -s "$root$CONF_DIR/cache.key" ]; then
    (umask 077; head -c 32 /dev/urandom > "$root$CONF_DIR/cache.key")
    say "made $CONF_DIR/cache.key"
    changed=$((changed + 1))
fi
chown root:root "$root$CONF_DIR/cache.key"
chmod 0600 "$root$CONF_DIR/cache.key"

# --- voice: the prompts, rendered here, readable by the service's group ------------------------
if $voice; then
    dir "$VOICE_DIR" 0750 warmcard warmcard
    dir "$VOICE_DIR/site" 0750 warmcard warmcard  # the site's own recordings; never touched
    "$warmcard" voice render --out "$work/voice" >/dev/null \
        || die "rendering the voice prompts failed (is espeak-ng installed?)"
    for clip in "$work"/voice/*.wav; do
        put "$VOICE_DIR/$(basename "$clip")" 0640 warmcard warmcard < "$clip"
    done
fi

# --- the screen: Chromium full screen on the kiosk's page, at every login ----------------------
if $screen; then
    put "$SCREEN_BIN" 0755 root root <<EOF
#!/bin/sh
# Warmcard kiosk screen, started at login by $AUTOSTART (install-kiosk.sh).
# The page exists only while warmcard-kiosk runs: wait for it rather than show an error page.
URL=http://127.0.0.1:$SCREEN_PORT/
until curl -sf -o /dev/null "\$URL"; do sleep 1; done
# X11 (the fallback session) blanks the screen by itself; Wayland is set by raspi-config.
if [ -n "\${DISPLAY:-}" ] && [ -z "\${WAYLAND_DISPLAY:-}" ] && command -v xset >/dev/null; then
    xset s off; xset s noblank; xset -dpms
fi
# The browser is "chromium-browser" on older bookworm images and "chromium" on newer ones.
BROWSER=\$(command -v chromium || command -v chromium-browser)
exec "\$BROWSER" --kiosk --noerrdialogs --disable-infobars --no-first-run \\
    --disable-session-crashed-bubble --disable-features=Translate --incognito \\
    --ozone-platform-hint=auto --check-for-update-interval=31536000 "\$URL"
EOF
    # One XDG autostart entry serves every Raspberry Pi OS bookworm session: labwc (the default)
    # and wayfire run lxsession-xdg-autostart, and the X11 fallback (LXDE) reads it itself.
    put "$AUTOSTART" 0644 root root <<EOF
[Desktop Entry]
Type=Application
Name=Warmcard screen 温馨卡屏幕
Comment=The kiosk's page, full screen (install-kiosk.sh)
Exec=$SCREEN_BIN
Terminal=false
X-GNOME-Autostart-enabled=true
EOF
    if real_root && command -v raspi-config >/dev/null; then
        # Desktop with automatic login (B4), and no screen blanking; both take effect at reboot.
        if [ "$(raspi-config nonint get_boot_cli)" != 1 ] || [ "$(raspi-config nonint get_autologin)" != 0 ]; then
            raspi-config nonint do_boot_behaviour B4 && say "desktop autologin on; 请重启 reboot"
            changed=$((changed + 1))
        fi
        if [ "$(raspi-config nonint get_blanking)" != 1 ]; then
            raspi-config nonint do_blanking 1 && say "screen blanking off; 请重启 reboot"
            changed=$((changed + 1))
        fi
    fi
fi

# --- udev rules (stable reader names) and the Pi's UART ------------------------------------------
put /etc/udev/rules.d/99-warmcard.rules 0644 root root < "$SRC/hardware/99-warmcard.rules"
real_root && { udevadm control --reload-rules && udevadm trigger --action=add || true; }
# The kernel's pn533_usb driver claims the ACR122U before libnfc can; keep it away.
if [[ "$reader" == libnfc:* ]]; then
    put /etc/modprobe.d/warmcard-blacklist-nfc.conf 0644 root root \
        < <(printf 'blacklist pn533_usb\nblacklist pn533\nblacklist nfc\n')
fi
if real_root && [[ "$reader" == *"/dev/serial0"* ]] && command -v raspi-config >/dev/null; then
    # Serial hardware on, login console off; takes effect after a reboot.
    if [ "$(raspi-config nonint get_serial_hw)" != 0 ] || [ "$(raspi-config nonint get_serial_cons)" != 1 ]; then
        raspi-config nonint do_serial_hw 0
        raspi-config nonint do_serial_cons 1
        say "UART enabled; 请重启 reboot before the reader can work"
        changed=$((changed + 1))
    fi
fi

# --- the service ---------------------------------------------------------------------------
# Its journal namespace: the kiosk's logs kept 14 days (the unit's LogNamespace=warmcard).
put "/etc/systemd/journald@warmcard.conf" 0644 root root < "$SRC/systemd/journald@warmcard.conf"
before=$changed
put "/etc/systemd/system/$UNIT" 0644 root root < "$SRC/systemd/$UNIT"
if real_root; then
    [ "$changed" -eq "$before" ] || systemctl daemon-reload
    systemctl is-enabled --quiet "$UNIT" || { systemctl enable "$UNIT" >/dev/null; changed=$((changed + 1)); }
    if $start && { [ "$changed" -gt 0 ] || ! systemctl is-active --quiet "$UNIT"; }; then
        systemctl restart "$UNIT"
    fi
else
    # Offline: systemctl --root only makes the [Install] symlinks, in $root.
    if ! systemctl --root="$root" is-enabled --quiet "$UNIT" 2>/dev/null; then
        systemctl --root="$root" enable "$UNIT" 2>&1 | sed 's/^/install-kiosk: /'
        changed=$((changed + 1))
    fi
fi

if [ "$changed" -eq 0 ]; then
    say "无需改动 nothing to change: already installed"
fi
say "done 完成. Check 检查: sudo -u warmcard $PREFIX/bin/warmcard doctor --config $CONF"
