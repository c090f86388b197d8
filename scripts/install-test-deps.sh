#!/usr/bin/env bash
# Installs what the tests use besides Rust: Python readers of the tables (DuckDB, pyarrow,
# deltalake, polars, Spark with a Java runtime), moto's S3 server, psql, psycopg and SQLAlchemy, and
# numpy for the independent cross-checks, jsonschema for the schema check, Prometheus'
# promtool for the rule and metrics checks, and Debian's Chromium with websocket-client for the
# dashboard page's browser test (headless, driven over the DevTools protocol). Safe to run
# again; skips what is present.
set -euo pipefail

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "installing Debian's prometheus package (prometheus, promtool)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may start a daemon on :9090; the tests start their own Prometheus.
  (sudo_if_needed systemctl stop prometheus 2>/dev/null || sudo_if_needed service prometheus stop 2>/dev/null || true) >/dev/null 2>&1
fi

# psql and openssl: the Postgres-protocol tests (a real psql; a self-signed certificate for TLS).
if ! command -v psql >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  echo "installing Debian's postgresql-client and openssl"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends postgresql-client openssl >/dev/null
fi

# Spark (the other-engines test) needs a Java runtime.
if ! command -v java >/dev/null 2>&1; then
  echo "installing Debian's Java runtime (for Spark)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
fi

# Chromium (headless) runs the dashboard page in the browser test (tests/web.rs).
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium (for the dashboard page's browser test)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# moto's server is the local S3-compatible store of the shared-table tests; pyspark reads the
# Delta table's files in the other-engines test; psycopg and SQLAlchemy are the Python clients
# of the Postgres-protocol tests; websocket-client speaks the DevTools protocol to Chromium.
python3 - <<'PY' || python3 -m pip install -q duckdb pyarrow numpy jsonschema mcp pyyaml deltalake polars 'moto[server]' pyspark 'psycopg[binary]' sqlalchemy websocket-client
import duckdb, pyarrow, numpy, jsonschema, mcp, yaml, deltalake, polars, moto.server, pyspark, psycopg, sqlalchemy, websocket  # noqa: F401
PY

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
