#!/usr/bin/env bash
# RUN step costs, on the busybox base that dray builds itself (examples/busybox):
#   1. per-step overhead: 100 `RUN true` steps (--no-cache) against the same Dockerfile without
#      them, timed with hyperfine; (t100 - t0) / 100 is the cost of one step (sandbox helper,
#      namespaces, overlay mount over a chain up to 100 layers deep, commit). Target <= 10 ms.
#      Run twice: with the store on the temp dir's disk, and on /dev/shm (a tmpfs), which
#      separates the sandbox's own cost from the disk's (the commit's syncfs, the mount-point
#      stubs created and removed in the upper directory).
#   2. commit of a big layer: a RUN writes 1 GiB; the upper directory *is* the snapshot, so the
#      commit copies nothing. Shown two ways: the file's inode inside the step equals the inode
#      in the committed snapshot, and the time from the step's last output line to its `done`
#      event (process exit, teardown, syncfs, index row) is printed.
#
# Usage: bench/run-steps.sh [STEPS]   (default 100). Needs root, hyperfine and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=${1:-100}
command -v hyperfine >/dev/null || { echo "hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "busybox-static is required (apt-get install busybox-static)" >&2; exit 1; }
cargo build --release --locked --quiet
dray=$PWD/target/release/dray

work=$(mktemp -d)
shm_root=/dev/shm/dray-bench-$$
trap 'rm -rf "$work" "$shm_root"' EXIT
root=$work/root
mkdir -p "$work/base"
cp examples/busybox/Dockerfile /bin/busybox "$work/base/"
for r in "$root" "$shm_root"; do
  "$dray" --root "$r" build -q -t dray-example/busybox "$work/base" >/dev/null
done

mkdir -p "$work/none" "$work/many"
printf 'FROM dray-example/busybox\nENV STEPS=0\n' > "$work/none/Dockerfile"
{
  printf 'FROM dray-example/busybox\nENV STEPS=%d\n' "$steps"
  for i in $(seq 1 "$steps"); do printf 'RUN true %d\n' "$i"; done
} > "$work/many/Dockerfile"

for r in "$root" "$shm_root"; do
  echo "==> $steps x RUN true vs none (--no-cache), store in $(dirname "$r")"
  hyperfine --warmup 1 --runs 5 --export-json "$work/steps.json" \
    -n "0 steps" "$dray --root $r build -q --no-cache $work/none" \
    -n "$steps steps" "$dray --root $r build -q --no-cache $work/many"
  python3 - "$work/steps.json" "$steps" "$(dirname "$r")" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
per = (r[f"{n} steps"] - r["0 steps"]) / n * 1000
print(f"per-step overhead, store in {sys.argv[3]}: {per:.1f} ms (target <= 10 ms)")
PY
done

echo "==> one RUN writing 1 GiB"
mkdir -p "$work/big"
cat > "$work/big/Dockerfile" <<'DOCKERFILE'
FROM dray-example/busybox
RUN dd if=/dev/zero of=/big bs=1M count=1024 2>/dev/null && stat -c 'inode %i' /big
DOCKERFILE
"$dray" --root "$root" build --progress rawjson --no-cache "$work/big" 2> "$work/big.json" >/dev/null
python3 - "$work/big.json" "$root" <<'PY'
import json, os, sys, datetime
def t(s):
    s = s.rstrip("Z")
    base, frac = s.split(".")
    return datetime.datetime.fromisoformat(base).timestamp() + float("0." + frac)
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
run = [e for e in events if e.get("name", "").startswith("[2/2] RUN")]
start = next(t(e["time"]) for e in run if e["event"] == "started")
last_log = max(t(e["time"]) for e in run if e["event"] == "log")
done = next(t(e["time"]) for e in run if e["event"] == "done")
inode = int(next(e["data"] for e in run if e["event"] == "log").split()[1])
found = None
for snap in os.listdir(os.path.join(sys.argv[2], "snapshots")):
    p = os.path.join(sys.argv[2], "snapshots", snap, "fs", "big")
    if os.path.exists(p):
        found = os.stat(p)
print(f"step: {done - start:.2f} s in all; last output -> committed: {(done - last_log) * 1000:.0f} ms")
print(f"inode in the step: {inode}; inode in the committed snapshot: {found.st_ino} "
      f"({'same file: nothing was copied' if found.st_ino == inode else 'DIFFERENT: copied'}), "
      f"{found.st_size >> 20} MiB")
PY
