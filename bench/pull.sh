#!/usr/bin/env bash
# Pull a ~120 MiB, 4-layer image from a loopback docker-registry into a fresh store, three times,
# and report throughput (MiB/s of compressed layer bytes) and peak RSS (/usr/bin/time -v). A
# fourth measurement builds `FROM` the image with a COPY on top, which also unpacks the layers
# (needs the applier; reported as "n/a" when the build fails).
#
# Usage: [DRAY=path] bench/pull.sh [MIB_PER_LAYER] (default 30). Needs docker-registry, umoci, skopeo and
# GNU time (apt-get install docker-registry umoci skopeo time).
set -euo pipefail
cd "$(dirname "$0")/.."

per_layer=${1:-30}
for tool in docker-registry umoci skopeo /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
# DRAY=/path/to/dray skips the release build (e.g. to try the script with a debug binary).
if [ -z "${DRAY:-}" ]; then
  cargo build --release --locked --quiet
fi
dray=${DRAY:-$PWD/target/release/dray}

work=$(mktemp -d)
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

# Four layers of incompressible data, so the blobs are as big as the files.
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:bench"
for i in 1 2 3 4; do
  umoci unpack --rootless --image "$layout:bench" "$work/bundle" >/dev/null
  head -c "$((per_layer << 20))" /dev/urandom >"$work/bundle/rootfs/layer$i.bin"
  umoci repack --image "$layout:bench" "$work/bundle"
  rm -rf "$work/bundle"
done
image=127.0.0.1:$port/bench:1
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:bench" "docker://$image"
bytes=$(skopeo inspect --raw --tls-verify=false "docker://$image" |
  python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
mib=$(python3 -c "print(round($bytes / 2**20, 1))")
echo "image: $image, 4 layers, $mib MiB compressed"

measure() { # label, command...
  local label=$1; shift
  if /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>&1; then
    python3 - "$work/time.txt" "$bytes" "$label" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = text.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
mib = int(sys.argv[2]) / 2**20
print(f"{sys.argv[3]}: {secs:.2f} s, {mib / secs:.0f} MiB/s, peak RSS {rss / 1024:.0f} MiB")
PY
  else
    echo "$label: n/a ($(grep -m1 "error" "$work/out.txt" | cut -c1-200))"
  fi
}

for run in 1 2 3; do
  measure "pull (fresh store, run $run)" "$dray" --root "$work/root$run" pull -q "$image"
done
measure "pull (everything present)" "$dray" --root "$work/root1" pull -q "$image"

mkdir -p "$work/ctx"
echo top >"$work/ctx/top.txt"
printf 'FROM %s\nCOPY top.txt /top.txt\n' "$image" >"$work/ctx/Dockerfile"
measure "build FROM it (fetch + unpack, fresh store)" \
  "$dray" --root "$work/root-build" build -q -t bench-app "$work/ctx"
