#!/usr/bin/env bash
# The main job on generated data: build deploylens, generate a demo ecosystem of 20
# repositories and 100,000 events, ingest it into a local data directory, print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/demo}
cargo build -q -p deploylens-cli
bin=target/debug/deploylens
rm -rf "$out"
$bin demo "$out/ecosystem" --repos 20 --events 100000 --seed 42
$bin --data-dir "$out/data" ingest "$out/ecosystem"
$bin --data-dir "$out/data" report --window 30d
echo
echo "Try: $bin --data-dir $out/data sql \"SELECT repository, count(*) FROM deployments GROUP BY 1 ORDER BY 2 DESC\""
echo "The dashboard: $bin --data-dir $out/data serve $out/ecosystem   then open http://127.0.0.1:9464/"
echo "  live: $bin demo $out/live --live &  $bin --data-dir $out/live-data serve $out/live"
