#!/usr/bin/env bash
# Build a 20,000-small-file context three ways and time each with hyperfine:
#   cold   — a fresh store every run,
#   no-op  — nothing changed since the last build,
#   edit   — one context file changed (only the COPY that includes it, and what follows, rerun).
# Targets on a 2-core machine: cold <= 2 s, no-op <= 0.10 s, edit <= 0.5 s.
#
# Usage: bench/build-context.sh [FILES]   (default 20000). Needs hyperfine (apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."

files=${1:-20000}
command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release --locked --quiet
dray=$PWD/target/release/dray

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
mkdir -p "$ctx/src"
# 200 directories of 100 files, a few hundred bytes each.
for d in $(seq 0 199); do
  mkdir -p "$ctx/src/d$d"
  for f in $(seq 0 $(( files / 200 - 1 ))); do
    printf 'file %d/%d %0200d\n' "$d" "$f" 0 > "$ctx/src/d$d/f$f.txt"
  done
done
printf 'notes\n' > "$ctx/README.md"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY README.md /app/README.md
COPY src/ /app/src/
ENV APP=/app
WORKDIR /app
DOCKERFILE
echo "context: $(find "$ctx" -type f | wc -l) files, $(du -sh "$ctx" | cut -f1)"

export SOURCE_DATE_EPOCH=1700000000
root=$work/root
# Each cold run gets a root of its own, deleted only after all runs: deleting a store of 20,000
# files right before a run measures the filesystem's discard of the old one, not dray.
cold_n=$work/cold-counter
echo 0 > "$cold_n"
hyperfine --warmup 1 --runs 5 --export-markdown "$work/cold.md" \
  --prepare "echo \$((\$(cat $cold_n) + 1)) > $cold_n" \
  -n cold "$dray build --root $work/cold-root-\$(cat $cold_n) --progress quiet -t bench $ctx"

"$dray" build --root "$root" --progress quiet -t bench "$ctx"
hyperfine --warmup 2 --runs 20 --export-markdown "$work/noop.md" \
  -n no-op "$dray build --root $root --progress quiet -t bench $ctx"

counter=$work/counter
echo 0 > "$counter"
hyperfine --warmup 1 --runs 10 --export-markdown "$work/edit.md" \
  --prepare "n=\$(cat $counter); echo \$((n+1)) > $counter; echo edit \$n >> $ctx/src/d7/f3.txt" \
  -n edit "$dray build --root $root --progress quiet -t bench $ctx"

cat "$work/cold.md" "$work/noop.md" "$work/edit.md"
