#!/usr/bin/env bash
# ensure-services.sh — make sure the services the tests talk to are up:
# PostgreSQL on 127.0.0.1:5432 (trust auth) and an MQTT broker (Mosquitto) on
# 127.0.0.1:1883; and that the tests' own tools are installed: the mosquitto
# binary (tests that restart a broker run their own), Node.js with npm
# (the third-party VDA 5050 vehicle, `make thirdparty`) and Chromium (the
# Web UI check, `starter webui screenshot`). Installs what is
# missing from Debian packages (needs root and apt), starts services when
# stopped, and says clearly what is missing when it cannot.
# DATABASE_URL / MQTT_URL pointing elsewhere skip the service checks.
set -uo pipefail

say() { echo "ensure-services: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=
apt_install() {
  can_install || return 1
  if [ -z "$apt_updated" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

ok=1

# --- PostgreSQL -------------------------------------------------------------
if [ -n "${DATABASE_URL:-}" ]; then
  say "DATABASE_URL is set; not managing PostgreSQL"
elif port_open 5432; then
  :
else
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "PostgreSQL not installed; installing the Debian package postgresql"
    apt_install postgresql || say "could not install postgresql (need root and apt)"
  fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
    conf=/etc/postgresql/$ver/main/pg_hba.conf
    # The tests connect as postgres over TCP without a password (trust).
    if [ -f "$conf" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
      sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
      pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >/dev/null 2>&1 || true
    fi
  fi
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 0.5; done
  if ! port_open 5432; then
    say "PostgreSQL is not reachable on 127.0.0.1:5432. Install it (apt-get install postgresql) and start it (pg_ctlcluster <version> main start), or set DATABASE_URL."
    ok=0
  fi
fi

# --- MQTT broker ------------------------------------------------------------
if [ -n "${MQTT_URL:-}" ]; then
  say "MQTT_URL is set; not managing Mosquitto"
elif port_open 1883; then
  :
else
  if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    say "Mosquitto not installed; installing the Debian package mosquitto"
    apt_install mosquitto || say "could not install mosquitto (need root and apt)"
  fi
  mbin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  if [ -x "$mbin" ]; then
    conf=$(mktemp /tmp/fleetflow-mosquitto.XXXXXX.conf)
    # set_tcp_nodelay: without it each QoS 1 round trip costs ~44 ms.
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' > "$conf"
    "$mbin" -d -c "$conf" >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 20); do port_open 1883 && break; sleep 0.25; done
  if ! port_open 1883; then
    say "no MQTT broker on 127.0.0.1:1883. Install Mosquitto (apt-get install mosquitto) and start it, or set MQTT_URL."
    ok=0
  fi
fi

# --- Tools the tests run themselves -------------------------------------------
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  say "the mosquitto binary is missing (tests that restart a broker run their own); installing the Debian package mosquitto"
  apt_install mosquitto || { say "could not install mosquitto (need root and apt): apt-get install mosquitto"; ok=0; }
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "Node.js/npm missing (the third-party VDA 5050 vehicle of the end-to-end tests); installing the Debian packages nodejs npm"
  apt_install nodejs npm || { say "could not install nodejs and npm (need root and apt): apt-get install nodejs npm"; ok=0; }
fi
if ! command -v python3 >/dev/null; then
  say "python3 missing (the independent webhook receiver of the activity tests); installing the Debian package python3"
  apt_install python3 || { say "could not install python3 (need root and apt): apt-get install python3"; ok=0; }
fi

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  say "Chromium missing (the Web UI check takes a headless screenshot of the workflow list); installing the Debian package chromium"
  apt_install chromium || { say "could not install chromium (need root and apt): apt-get install chromium"; ok=0; }
fi

[ "$ok" = 1 ] || exit 1
say "PostgreSQL and MQTT are up; mosquitto, node, python3 and chromium are installed"
