#!/usr/bin/env bash
# Runs every test: unit tests of each crate and the integration tests against the real NATS
# and PostgreSQL (started or installed first when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/ensure-infra.sh
# The deployment files (Kubernetes manifests, KEDA objects, compose) against their schemas.
bash deploy/validate-manifests.sh
# The client library stays embeddable: no database, HTTP server, metrics or CLI crates in it.
if cargo tree -p contact-import-client -e normal --prefix none \
  | grep -E '^(sqlx|hyper|prometheus|clap|indicatif|tracing-subscriber) '; then
  echo "contact-import-client must not depend on the crates above" >&2
  exit 1
fi
# The page is a client like the CLI: it reaches the data only through the contract.
if cargo tree -p contact-web -e normal --prefix none | grep -E '^sqlx(-[a-z]+)? '; then
  echo "contact-web must not depend on a database crate" >&2
  exit 1
fi
# The writer's database tests make a fresh database per test on this server.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/contact_import_test}"
# The CLI tests run the contact-import binary itself.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# The import page in a real browser, over the services just built.
bash deploy/test-web.sh
