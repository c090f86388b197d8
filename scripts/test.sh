#!/usr/bin/env bash
# Runs every test of deploylens: the Rust unit and end-to-end tests (which drive the real
# binary, DuckDB, pyarrow and Prometheus), then the schema checks of testdata.
# Run scripts/install-test-deps.sh first on a fresh machine (.ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --no-fail-fast --failure-output final
python3 testdata/check_schemas.py
