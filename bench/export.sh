#!/usr/bin/env bash
# Layer export throughput and peak RSS, per compression.
#
# Builds (with dray, release, in a fresh root) an image of two COPY layers: 1 GiB of random
# data and 1 GiB of zeros. Then exports the layers of its two snapshot directories with the
# `export` bench binary (image/benches/export.rs: the public `write_layer`)
# under /usr/bin/time -v: each layer alone, then both at once as `assemble` does. The files are
# read into the page cache first and the blobs are discarded (TO_DISK=1 writes them to files):
# this measures dray, not the disk.
#
# Targets on a 2-core machine: uncompressed >= 500 MiB/s, zstd >= 250 MiB/s, gzip >= 90 MiB/s,
# peak RSS <= 64 MiB. Measured (2 vCPU EPYC, 2026-11-23; level 6 / level 3; MiB/s, peak RSS):
#   random 1 GiB:  none 1329 (2 MiB)   zstd 629 (30 MiB)    gzip 89-92 (19 MiB)
#   zeros 1 GiB:   none 1357 (2 MiB)   zstd 1134 (14 MiB)   gzip 880-1008 (14 MiB)
#   both at once:  none 2614 (2 MiB)   zstd 1041 (39 MiB)   gzip 165-176 (25 MiB)
# gzip on random data is deflate-bound (about 21 CPU-seconds per GiB at level 6), so it needs
# both CPUs to itself: on a shared machine, run this in a session of its own with a raised
# priority (as root: setsid, then `echo -20 > /proc/self/autogroup`), or the figures measure
# the neighbours.
#
# Usage: bench/export.sh [SIZE_MIB] [COMPRESSION...]
#   SIZE_MIB     size of each file (default 1024)
#   COMPRESSION  none, zstd, gzip, or codec:level such as gzip:1 (default: none zstd gzip)
# Env: THREADS=n (default 0 = all CPUs), TO_DISK=1, WORK=dir (default: a temp dir under /var/tmp),
#      KEEP=1 keeps the work dir; a kept WORK with a built image is reused (no rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."

size=${1:-1024}
shift || true
codecs=("$@")
[ ${#codecs[@]} -gt 0 ] || codecs=(none zstd gzip)
threads=${THREADS:-0}

cargo build --release --locked --quiet
dray=$PWD/target/release/dray
bench=$(cargo bench --locked -p dray-image --bench export --no-run --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "export" and .executable != null) | .executable' |
  tail -n1)
[ -x "$bench" ] || { echo "could not build the export bench binary" >&2; exit 1; }

work=${WORK:-$(mktemp -d /var/tmp/dray-export-bench.XXXXXX)}
mkdir -p "$work"
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -d "$work/root" ]; then
  echo "== reusing the image built in $work/root"
else
  mkdir -p "$ctx"
  head -c "${size}M" /dev/urandom > "$ctx/random.bin"
  head -c "${size}M" /dev/zero > "$ctx/zeros.bin"
  cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY random.bin /random.bin
COPY zeros.bin /zeros.bin
DOCKERFILE
  echo "== dray build (COPY both files, export the image as gzip layers), fresh root"
  export SOURCE_DATE_EPOCH=1700000000
  /usr/bin/time -v "$dray" build --root "$work/root" --progress quiet -t export-bench "$ctx" \
    2> "$work/build.time"
  grep -E 'Elapsed|Maximum resident' "$work/build.time" | sed 's/^\s*/   /'
  rm -rf "$ctx"
fi

random_dir=$(dirname "$(find "$work/root" -type f -name random.bin -path '*/fs/*' | head -n1)")
zeros_dir=$(dirname "$(find "$work/root" -type f -name zeros.bin -path '*/fs/*' | head -n1)")
[ -d "$random_dir" ] && [ -d "$zeros_dir" ] || { echo "snapshot directories not found" >&2; exit 1; }
out=()
if [ "${TO_DISK:-}" = 1 ]; then
  mkdir -p "$work/out"
  out=(--out "$work/out")
fi

summary=()
for codec in "${codecs[@]}"; do
  name=${codec%%:*}
  level=()
  [ "$codec" != "$name" ] && level=(--level "${codec#*:}")
  for set in random zeros both; do
    case $set in
      random) dirs=("$random_dir") ;;
      zeros) dirs=("$zeros_dir") ;;
      both) dirs=("$random_dir" "$zeros_dir") ;;
    esac
    echo "== $codec, $set"
    # Warm the page cache: the measure is dray's, not the disk's.
    cat "${dirs[@]/%//random.bin}" "${dirs[@]/%//zeros.bin}" > /dev/null 2>&1 || true
    /usr/bin/time -v "$bench" --compression "$name" "${level[@]}" --threads "$threads" \
      "${out[@]}" "${dirs[@]}" > "$work/run.out" 2> "$work/run.time"
    sed 's/^/   /' "$work/run.out"
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/run.time")
    rate=$(awk '/all layers at once/ {for (i = 1; i <= NF; i++) if ($i == "MiB/s") print $(i-1)}' "$work/run.out")
    wall=$(awk '/all layers at once/ {for (i = 1; i <= NF; i++) if ($i == "in") print $(i+1)}' "$work/run.out")
    cpu=$(awk '/all layers at once/ {for (i = 1; i <= NF; i++) if ($i == "(cpu") print $(i+1)}' "$work/run.out")
    echo "   peak RSS $((rss / 1024)) MiB"
    summary+=("$(printf '| %-8s | %-6s | %8s MiB/s | %6s s | %6s s | %4s MiB |' "$codec" "$set" "$rate" "$wall" "$cpu" "$((rss / 1024))")")
  done
done

echo
echo "| codec    | layers | throughput     | wall     | CPU      | peak RSS |"
echo "|----------|--------|----------------|----------|----------|----------|"
printf '%s\n' "${summary[@]}"
