#!/usr/bin/env bash
# Install the system parts ticklake needs on Debian/Ubuntu, as root, idempotently:
# PostgreSQL (server + headers) and the TimescaleDB extension, built from Debian's own
# source package when no packaged build is present (Debian 12 ships none); promtool (Debian's
# prometheus package) for the alert rules' unit tests (infra/prometheus/alerts_test.yml) and
# systemd-analyze for the units' check (infra/systemd/).
# The system's apt sources are never changed: trixie's source index lives in a private
# apt configuration under /var/lib/ticklake-apt.
set -euo pipefail

TIMESCALE_SUITE="${TICKLAKE_TIMESCALE_SUITE:-trixie}"
PRIVATE_APT=/var/lib/ticklake-apt
export DEBIAN_FRONTEND=noninteractive

log() { printf 'install.sh: %s\n' "$*"; }

need_packages=()
for pkg in python3-venv python3-dev postgresql postgresql-contrib cmake gcc make dpkg-dev libssl-dev libkrb5-dev debian-archive-keyring systemd; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_packages+=("$pkg")
done
if [ "${#need_packages[@]}" -gt 0 ]; then
  log "installing ${need_packages[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi

# promtool comes only with Debian's prometheus server package. Install it without starting or
# enabling that server (policy-rc.d refuses service starts during the install): this machine
# needs the tool, not a Prometheus listening on :9090.
if ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus for promtool (its service is left stopped and disabled)"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || { apt-get update -qq; apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
  [ "$own_policy" = 1 ] && rm -f "$policy"
  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  command -v promtool >/dev/null
fi

pg_major=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
dev_pkg="postgresql-server-dev-${pg_major}"
if ! dpkg-query -W -f='${Status}' "$dev_pkg" 2>/dev/null | grep -q "install ok installed"; then
  log "installing $dev_pkg"
  apt-get install -y -qq --no-install-recommends "$dev_pkg" >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends "$dev_pkg" >/dev/null; }
fi
pg_config="/usr/lib/postgresql/${pg_major}/bin/pg_config"
ext_dir="$("$pg_config" --sharedir)/extension"

if ls "$ext_dir"/timescaledb.control >/dev/null 2>&1; then
  log "timescaledb already installed for PostgreSQL ${pg_major}"
else
  log "building timescaledb for PostgreSQL ${pg_major} from Debian ${TIMESCALE_SUITE} sources"
  mkdir -p "$PRIVATE_APT/lists/partial" "$PRIVATE_APT/cache/archives/partial" "$PRIVATE_APT/build"
  cat > "$PRIVATE_APT/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${TIMESCALE_SUITE} main
SRC
  apt_private=(-o "Dir::Etc::SourceList=$PRIVATE_APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
               -o "Dir::State::Lists=$PRIVATE_APT/lists" -o "Dir::Cache=$PRIVATE_APT/cache"
               -o "APT::Get::List-Cleanup=0")
  apt-get "${apt_private[@]}" update -qq
  build="$PRIVATE_APT/build"
  rm -rf "$build"/*
  (cd "$build" && apt-get "${apt_private[@]}" source -qq timescaledb >/dev/null)
  src=$(find "$build" -maxdepth 1 -mindepth 1 -type d -name 'timescaledb-*' | head -n 1)
  [ -n "$src" ] || { log "no timescaledb source unpacked in $build"; exit 1; }
  (cd "$src" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="$pg_config" \
      -DAPACHE_ONLY=1 -DSEND_TELEMETRY_DEFAULT=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
      -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF >/dev/null \
    && cmake --build build -j "$(nproc)" >/dev/null && cmake --install build >/dev/null)
  ls "$ext_dir"/timescaledb.control >/dev/null
  log "timescaledb installed into $ext_dir"
fi
