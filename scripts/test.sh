#!/usr/bin/env bash
# Runs every test of deploylens: the Rust unit and end-to-end tests (which drive the real
# binary, DuckDB, pyarrow, Prometheus, psql and psycopg), then the schema checks of testdata.
# It first installs what the tests need and the machine lacks (scripts/install-test-deps.sh:
# apt and pip packages, cargo-nextest; quick when everything is there). Set
# DEPLOYLENS_SKIP_DEPS=1 to skip that step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${DEPLOYLENS_SKIP_DEPS:-0}" != 1 ]; then
  bash scripts/install-test-deps.sh
fi
cargo nextest run --workspace --no-fail-fast --failure-output final
python3 testdata/check_schemas.py
