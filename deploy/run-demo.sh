#!/usr/bin/env bash
# The main job on one machine: NATS and PostgreSQL up, the three services started, the sample
# file imported with progress and the summary shown. `--keep` leaves the services running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keep=false; [ "${1:-}" = "--keep" ] && keep=true
bash deploy/ensure-infra.sh

export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/contact_import}"
export CONTACT_IMPORT_ACCOUNT="${CONTACT_IMPORT_ACCOUNT:-demo}"
cargo build --release --workspace --bins
bin=target/release
logs=target/demo-logs; mkdir -p "$logs"

pids=()
stop_services() { [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
$keep || trap stop_services EXIT
for service in contact-writer contact-mapper contact-ingest; do
  "$bin/$service" >"$logs/$service.log" 2>&1 &
  pids+=($!)
done
# The import page, serving the demo account without login.
export WEB_ADDR="${WEB_ADDR:-127.0.0.1:8080}"
WEB_ACCOUNT="$CONTACT_IMPORT_ACCOUNT" "$bin/contact-web" >"$logs/contact-web.log" 2>&1 &
pids+=($!)
echo "services started (logs in $logs); waiting for the writer to answer"
for _ in $(seq 1 60); do
  "$bin/contact-import" attributes list >/dev/null 2>&1 && break
  sleep 0.5
done

cli="$bin/contact-import"
echo "== how the sample file reads, and the mapping suggested for it"
"$cli" preview deploy/sample-contacts.csv
echo
echo "== importing deploy/sample-contacts.csv into account $CONTACT_IMPORT_ACCOUNT"
"$cli" import deploy/sample-contacts.csv --auto-map --type customer --category newsletter --tag fair-2026 --follow
echo
echo "== the same file again with --duplicates skip"
id="$("$cli" import deploy/sample-contacts.csv --auto-map --duplicates skip --follow --json | tail -n 1 | sed 's/.*"import_id":"\([^"]*\)".*/\1/')"
"$cli" status "$id"
"$cli" errors "$id" -o "$logs/failed-rows.csv"
echo
echo "== its failed rows, as written to $logs/failed-rows.csv for fixing"
cat "$logs/failed-rows.csv"
echo
echo "== contacts in account $CONTACT_IMPORT_ACCOUNT"
"$cli" contacts export --format csv
echo
echo "== the import page: http://$WEB_ADDR/ (account $CONTACT_IMPORT_ACCOUNT)"
if $keep; then
  echo "services left running: pids ${pids[*]} (kill -TERM them to stop)"
fi
