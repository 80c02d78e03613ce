#!/usr/bin/env bash
# Time `dray cache ls` and `dray cache du` on a store with about 1,000 cache records
# (target: <= 100 ms each on a 2-core machine), with hyperfine.
#
# The store is made by building a 100-step Dockerfile (one COPY of a small file per step) ten
# times with --no-cache: every build saves 100 new records, snapshots and layer blobs, and tags
# the last image, so `ls` also resolves image references.
#
# Usage: bench/cache-cli.sh [BUILDS]   (default 10, i.e. 1,000 records). Needs hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

builds=${1:-10}
command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release --locked --quiet
dray=$PWD/target/release/dray

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
mkdir -p "$ctx"
echo "FROM scratch" > "$ctx/Dockerfile"
for i in $(seq 1 100); do
  printf 'file %d %0100d\n' "$i" 0 > "$ctx/f$i.txt"
  echo "COPY f$i.txt /files/f$i.txt" >> "$ctx/Dockerfile"
done
root=$work/root
export SOURCE_DATE_EPOCH=1700000000
for b in $(seq 1 "$builds"); do
  "$dray" build --root "$root" --progress quiet --no-cache -t bench "$ctx" >/dev/null
done
records=$("$dray" cache ls --root "$root" --format json | grep -c '"kind": "file"')
echo "store: $records cache records, $(du -sh "$root" | cut -f1), $(find "$root/snapshots" -maxdepth 1 -mindepth 1 | wc -l) snapshots"

hyperfine --warmup 3 --runs 30 --export-markdown "$work/cache-cli.md" \
  -n "cache ls" "$dray cache ls --root $root" \
  -n "cache ls --format json" "$dray cache ls --root $root --format json" \
  -n "cache du" "$dray cache du --root $root"
cat "$work/cache-cli.md"
