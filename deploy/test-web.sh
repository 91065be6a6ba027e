#!/usr/bin/env bash
# The import page's end-to-end tests: the three services and the page over the real NATS and
# PostgreSQL, on a fresh database and namespace of their own, driven by Playwright in Debian's
# Chromium (Playwright never downloads a browser); beside them a secure deployment (a NATS
# server of its own from contact-import-admin's configuration, two tenants with a web user
# each, the page in login mode) for the login and isolation tests. Screenshots of each step are left in
# tests/web/artifacts/screenshots. Expects the workspace binaries built (deploy/test.sh does it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

say() { printf '%s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

for binary in contact-writer contact-mapper contact-ingest contact-web contact-import-admin; do
  [ -x "$bin/$binary" ] || { say "$bin/$binary is missing: run cargo build --workspace --bins"; exit 1; }
done

# A database, namespace and account of this run alone, so nothing else interferes with it.
run="web$(date +%s)$$"
database="contact_import_$run"
admin_url="postgres://postgres@127.0.0.1:5432/postgres"
psql -q -d "$admin_url" -c "CREATE DATABASE $database" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database"
export CONTACT_IMPORT_NAMESPACE="$run"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export WEB_ACCOUNT="marketer-$run"
# Small enough that the oversized-file test need not send gigabytes.
export WEB_MAX_UPLOAD_BYTES=1048576
port="$((20000 + RANDOM % 20000))"
export WEB_ADDR="127.0.0.1:$port"
export WEB_URL="http://$WEB_ADDR"
logs="$root/tests/web/artifacts/logs"; mkdir -p "$logs"

pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
  wait 2>/dev/null || true
  psql -q -d "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for service in contact-writer contact-mapper contact-ingest contact-web; do
  "$bin/$service" >"$logs/$service.log" 2>&1 &
  pids+=($!)
done

# The page answers once it is connected; the writer once its catalog answers.
ready=false
for _ in $(seq 1 120); do
  if curl -fsS "$WEB_URL/" >/dev/null 2>&1 &&
    CONTACT_IMPORT_ACCOUNT="$WEB_ACCOUNT" "$bin/contact-import" attributes list >/dev/null 2>&1; then
    ready=true; break
  fi
  sleep 0.5
done
$ready || { say "the page or the writer did not come up; logs in $logs"; tail -n 20 "$logs"/*.log >&2; exit 1; }
# Two choice attributes of the account, for the value-mapping test.
account_cli() { CONTACT_IMPORT_ACCOUNT="$WEB_ACCOUNT" "$bin/contact-import" "$@" >/dev/null; }
account_cli attributes add gender --type enum --values F,M --label "Płeć"
account_cli attributes add newsletter --type boolean --label "Newsletter"

# The secure deployment beside it, for the login and tenant isolation tests: a NATS server of
# its own from the configuration contact-import-admin writes, the services on their own
# credentials, two tenants with one web user each, and the page in login mode.
secure="$root/tests/web/artifacts/secure-$run"
rm -rf "$root"/tests/web/artifacts/secure-*
secure_port="$((20000 + RANDOM % 20000))"
secure_database="${database}_secure"
psql -q -d "$admin_url" -c "CREATE DATABASE $secure_database" >/dev/null
cleanup_secure() {
  psql -q -d "$admin_url" -c "DROP DATABASE IF EXISTS $secure_database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'cleanup; cleanup_secure' EXIT
admin() { "$bin/contact-import-admin" "$@" >/dev/null; }
admin init "$secure" --namespace "${run}s" --listen "127.0.0.1:$secure_port" --store "$secure/jetstream"
for tenant in acme globex; do admin tenant add "$tenant-$run" --dir "$secure"; done
export WEB_USER_ACME="anna-$run" WEB_USER_GLOBEX="gosia-$run" WEB_USER_PASSWORD="a password of the e2e run $run"
echo "$WEB_USER_PASSWORD" | admin web-user add "$WEB_USER_ACME" --account "acme-$run" --dir "$secure" --password-stdin
echo "$WEB_USER_PASSWORD" | admin web-user add "$WEB_USER_GLOBEX" --account "globex-$run" --dir "$secure" --password-stdin
"${NATS_SERVER:-/usr/sbin/nats-server}" -c "$secure/nats-server.conf" >"$logs/secure-nats.log" 2>&1 &
pids+=($!)
secure_web_port="$((port + 1))"
export SECURE_WEB_URL="http://127.0.0.1:$secure_web_port"
for service in writer mapper ingest; do
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$secure_database" NATS_URL="nats://127.0.0.1:$secure_port" \
    NATS_CREDS="$secure/$service.creds" CONTACT_IMPORT_NAMESPACE="${run}s" \
    "$bin/contact-$service" >"$logs/secure-contact-$service.log" 2>&1 &
  pids+=($!)
done
NATS_URL="nats://127.0.0.1:$secure_port" CONTACT_IMPORT_NAMESPACE="${run}s" WEB_DEPLOYMENT_DIR="$secure" \
  WEB_ADDR="127.0.0.1:$secure_web_port" "$bin/contact-web" >"$logs/secure-contact-web.log" 2>&1 &
pids+=($!)
ready=false
for _ in $(seq 1 120); do
  if curl -fsS "$SECURE_WEB_URL/login" >/dev/null 2>&1 &&
    NATS_URL="nats://127.0.0.1:$secure_port" NATS_CREDS="$secure/tenants/acme-$run.creds" CONTACT_IMPORT_NAMESPACE="${run}s" \
      CONTACT_IMPORT_ACCOUNT="acme-$run" "$bin/contact-import" attributes list >/dev/null 2>&1; then
    ready=true; break
  fi
  sleep 0.5
done
$ready || { say "the secure deployment did not come up; logs in $logs"; tail -n 20 "$logs"/secure-*.log >&2; exit 1; }

cd tests/web
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
[ -d node_modules/@playwright/test ] || npm ci --no-audit --no-fund --loglevel=error
npx playwright test "$@"
