#!/usr/bin/env bash
# Makes sure NATS (with JetStream) and PostgreSQL answer on 127.0.0.1, starting or installing
# them when they do not, and that the contact_import databases exist: the local server
# binaries, installed from Debian's packages when missing (root or sudo).
#   Never the containers of docker-compose.yml, even where Docker runs: its NATS is the secure
#   three-node cluster, which lets in no client without credentials, the tests start
#   nats-server processes of their own (the binary must be here), and one test checks TLS to a
#   PostgreSQL with Debian's snakeoil certificate. `docker compose up` runs the whole set apart.
set -euo pipefail

NATS_PORT=4222
PG_PORT=5432

say() { printf '%s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  say "installing $* from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_nats() {
  port_open "$NATS_PORT" && return 0
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    apt_install nats-server
  fi
  local server; server="$(command -v nats-server || echo /usr/sbin/nats-server)"
  say "starting NATS with JetStream ($server)"
  as_root mkdir -p /var/lib/nats-server
  if command -v start-stop-daemon >/dev/null; then
    as_root start-stop-daemon --start --oknodo --background --exec "$server" -- \
      -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server
  else
    nohup "$server" -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server >/dev/null 2>&1 &
  fi
  wait_port "$NATS_PORT" || { say "NATS did not start on port $NATS_PORT"; exit 1; }
}

ensure_postgres() {
  if ! port_open "$PG_PORT"; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql
      # Local development only: let the postgres role in over 127.0.0.1 without a password.
      for hba in /etc/postgresql/*/main/pg_hba.conf; do
        grep -q 'contact-import' "$hba" || as_root sed -i \
          '1i host all postgres 127.0.0.1/32 trust # contact-import local development' "$hba"
      done
    fi
    if ! port_open "$PG_PORT" && command -v pg_ctlcluster >/dev/null; then
      local version; version="$(ls /etc/postgresql | sort -V | tail -n 1)"
      say "starting PostgreSQL $version"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    wait_port "$PG_PORT" || { say "PostgreSQL did not start on port $PG_PORT"; exit 1; }
  fi
  for database in contact_import contact_import_test; do
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
      psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $database" >/dev/null
    fi
  done
}

ensure_build_tools() {
  command -v cargo >/dev/null || { say "cargo is missing: install Rust with rustup (https://rustup.rs)"; exit 1; }
  command -v cc >/dev/null || apt_install build-essential
  command -v psql >/dev/null || apt_install postgresql-client
  # The Python example client's test makes a virtual environment (nats-py from PyPI).
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3 python3-venv
}

ensure_build_tools
ensure_nats
ensure_postgres
say "NATS (JetStream) on 127.0.0.1:$NATS_PORT and PostgreSQL on 127.0.0.1:$PG_PORT are up"
