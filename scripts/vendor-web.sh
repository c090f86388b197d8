#!/usr/bin/env bash
# Refreshes the charting library the dashboard page embeds (uPlot, from the npm registry) into
# crates/deploylens-server/web/vendor/uplot/. Run by hand when upgrading; the build never
# fetches anything. The version and the tarball's integrity are recorded in
# crates/deploylens-server/web/vendor/README.md.
set -euo pipefail
version="${1:-1.6.32}"
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/crates/deploylens-server/web/vendor/uplot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$dest/"
npm view "uplot@$version" dist.integrity
sha256sum "$dest"/*
