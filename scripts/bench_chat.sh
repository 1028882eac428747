#!/usr/bin/env bash
# Durable chat over loopback (issue 4): messages/s, ack latency and the server's group-commit
# batch sizes, measured by `rollcall-load chat` (tools/load/chat.h explains the ack).
#
# rollcall runs alone, pinned to core 0 with --threads 1 (its persistence thread shares that core),
# while rollcall-load runs pinned to core 1; the same as scripts/bench.sh. Each run gets a fresh
# data directory on the real disk (fdatasync is the point): --data-root, default $build/bench-data;
# the script refuses tmpfs. Open-loop rows (the load sends at a fixed total rate on a jittered
# schedule):
#
#   r1k   1,000 msgs/s   100 rooms x 10 members (1 msg/s per member)
#   r5k   5,000 msgs/s   100 rooms x 10 members (5 msgs/s per member)
#   r10k 10,000 msgs/s   100 rooms x 10 members (10 msgs/s per member)
#
# with --chat-rate 50 (a member may send 50/s, burst 100: the limit never bites at these rates)
# and --history-on-join 0. Then the maximum: a closed-loop sweep (every member keeps K messages
# unanswered, 100 rooms x 2 members, --chat-rate 1000000 so that only the server limits) over
# K = 8, 32, 128, 256; the row "max" is the sweep's highest acked/s. With --two-shards (default on)
# r5k and the sweep are repeated with rollcall --threads 2, unpinned, as second rows.
#
# Writes results/chat-<row>-<server>.json (+ .log with the load's summary), results/chat.md (the
# table) and prints the table, the batch-size histograms and the checks against the goals:
# at least 50,000 durable messages/s, and p99 ack under 25 ms at 5,000/s.
#
# usage: scripts/bench_chat.sh [--quick] [--only r1k,r5k,r10k,max] [--no-two-shards]
#                              [--build-dir DIR] [--results DIR] [--data-root DIR] [--nice N]
#   --quick   5 s windows after a 2 s warm-up (a smoke run); default 25 s after 5 s
#   --nice    autogroup nice of the server and the load (default -20 as root, else 0; see bench.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/bench_lib.sh
two_shards=1
data_root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-two-shards) two_shards=0; shift ;;
    --data-root) data_root=$2; shift 2 ;;
    *) bench_timed_arg "$@"; shift "$bench_used" ;;
  esac
done
bench_windows
[ -n "$data_root" ] || data_root="$build/bench-data"

bench_check_host
bench_build rollcall rollcall-load
mkdir -p "$results" "$data_root"
fs=$(df -T "$data_root" | awk 'NR == 2 { print $2 " on " $1 " (" $7 ")" }')
case "$fs" in
  tmpfs*|ramfs*) echo "bench_chat.sh: $data_root is on $fs; fsync would cost nothing: use --data-root on a disk" >&2; exit 2 ;;
esac
{
  bench_meta_head
  echo "data dir: $data_root, filesystem $fs"
  echo "windows: ${duration} s after ${warmup} s warm-up; nice ${niceness}; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/chat_meta.txt"

trap stop_server EXIT

# run_one NAME SHARDS CHAT_RATE ROOMS MEMBERS LOAD_ARGS...
#   SHARDS 1: --threads 1 pinned to core 0; 2: --threads 2 on both cores, unpinned.
run_one() {
  local name=$1 shards=$2 chat_rate=$3 rooms=$4 members=$5
  shift 5
  local port server cpus out
  server="rollcall-t$shards"
  out="$results/chat-$name-$server"
  if [ "$shards" = 1 ]; then cpus=0; else cpus=0-1; fi
  port=$(free_port) || { echo "bench_chat.sh: no free port" >&2; return 1; }
  data=$(mktemp -d -p "$data_root" chat-XXXXXX)
  pinned "$cpus" "$build/rollcall" --threads "$shards" --port "$port" --bind 127.0.0.1 \
    --allow-anonymous --room-capacity 1000 --chat-rate "$chat_rate" --history-on-join 0 \
    --data-dir "$data" --log-level warn >"$out.server.log" 2>&1 &
  server_pid=$!
  server_up "http://127.0.0.1:$port/healthz" rollcall "$out.server.log" || return 1
  echo "==> $name $server: $rooms rooms x $members members, $*, port $port" >&2
  run_load "$out" 9 "$name $server" chat --port "$port" --rooms "$rooms" --members "$members" \
    --duration "$duration" --warmup "$warmup" --room-prefix "chat-$name" "$@"
  stop_server
}

shard_rows=(1)
if [ "$two_shards" = 1 ]; then shard_rows=(1 2); fi

for r in "r1k 1000" "r5k 5000" "r10k 10000"; do
  read -r name rate <<<"$r"
  want "$name" || continue
  run_one "$name" 1 50 100 10 --rate "$rate"
  if [ "$name" = r5k ] && [ "$two_shards" = 1 ]; then run_one "$name" 2 50 100 10 --rate "$rate"; fi
done
if want max; then
  for shards in "${shard_rows[@]}"; do
    for k in 8 32 128 256; do
      run_one "max-k$k" "$shards" 1000000 100 2 --inflight "$k"
    done
  done
fi

python3 - "$results" "$only" "$two_shards" <<'EOF' | tee "$results/chat.md"
import json, os, sys
results, only, two = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def load(name, server):
    try:
        with open(os.path.join(results, f"chat-{name}-{server}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
rows = []
for name in ("r1k", "r5k", "r10k"):
    if only and name not in only.split(","): continue
    for server in ("rollcall-t1", "rollcall-t2"):
        if server == "rollcall-t2" and not (two and name == "r5k"): continue
        rows.append((name, server, load(name, server)))
sweep = {}
if not only or "max" in only.split(","):
    for server in ("rollcall-t1", "rollcall-t2") if two else ("rollcall-t1",):
        for k in (8, 32, 128, 256):
            r = load(f"max-k{k}", server)
            rows.append((f"max-k{k}", server, r))
            if r: sweep.setdefault(server, []).append((k, r))
nan = float("nan")
def cpu(r): return r["server"]["cpu_percent"] if r and r.get("server") else nan
def errs(r):
    codes = dict(r["errors"]["error_codes"])
    if r["refused"]: codes["refused(ref)"] = r["refused"]
    return ", ".join(f"{k} {v}" for k, v in codes.items()) or "none"
print("| row | server | target | sent/s | acked/s | ack p50 ms | p90 | p99 | max | deliveries/s | records/commit (mean; p50, p99 bucket) | commits/s | ms/commit | server CPU % | load CPU % | errors | checks |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|")
for name, server, r in rows:
    if not r:
        print(f"| {name} | {server} | (no result) |"); continue
    target = f'{r["rate_target"]:.0f}/s' if r["loop"] == "open" else f'K={r["inflight"]} closed'
    a, l = r["ack_latency_ms"], r.get("log")
    if l:
        batch = f'{l["records_per_commit"]:.1f}; ≤{l["batch_p50_le"]}, ≤{l["batch_p99_le"]}'
        commits, cms = f'{l["commits_per_s"]:.0f}', f'{l["commit_ms_mean"]:.2f}'
    else:
        batch, commits, cms = "n/a", "n/a", "n/a"
    ok = "ok" if r["checks"]["ok"] else "FAILED"
    print(f'| {name} | {server} | {target} | {r["sent_per_s"]:.0f} | {r["acked_per_s"]:.0f} | {a["p50"]:.2f} | {a["p90"]:.2f} | '
          f'{a["p99"]:.2f} | {a["max"]:.2f} | {r["deliveries_per_s"]:.0f} | {batch} | {commits} | {cms} | {cpu(r):.1f} | '
          f'{r["load_cpu_percent"]:.1f} | {errs(r)} | {ok} |')
print()
best = {}
for server, runs in sweep.items():
    k, r = max(runs, key=lambda kr: kr[1]["acked_per_s"])
    best[server] = (k, r)
    print(f'max {server}: {r["acked_per_s"]:.0f} durable msgs/s acked (K={k} per member, {r["sessions_open"]} members), '
          f'ack p50 {r["ack_latency_ms"]["p50"]:.1f} ms, p99 {r["ack_latency_ms"]["p99"]:.1f} ms, '
          f'{r["log"]["records_per_commit"]:.0f} records/commit' if r.get("log") else "")
print()
print("Commit batch sizes over each window (messages per group commit: count of commits per bucket):")
print()
for name, server, r in rows:
    if r and r.get("log"):
        h = " ".join(f'≤{b["le"]}:{b["count"]}' for b in r["log"]["batch_histogram"] if b["count"])
        print(f"- {name} {server}: {h}")
print()
def valid(r):
    return r is not None and r["sessions_open"] == r["sessions_target"] and r["acked"] > 0
def goal(label, ok, detail, r):
    if not valid(r): print(f"- {label}: NOT MEASURED (a run failed)")
    else: print(f"- {label}: {'met' if ok else 'MISSED'} ({detail})")
for name, server, r in rows:
    if r and not r["checks"]["ok"]:
        print(f"- checks FAILED in {name} {server}: {json.dumps(r['checks'])}")
if "rollcall-t1" in best:
    k, r = best["rollcall-t1"]
    goal("at least 50,000 durable messages/s (--threads 1)", r["acked_per_s"] >= 50000,
         f'{r["acked_per_s"]:.0f}/s at K={k}, checks {"ok" if r["checks"]["ok"] else "FAILED"}', r)
r = load("r5k", "rollcall-t1")
if r and (not only or "r5k" in only.split(",")):
    goal("p99 ack under 25 ms at 5,000 msgs/s (--threads 1)", r["ack_latency_ms"]["p99"] < 25,
         f'p99 {r["ack_latency_ms"]["p99"]:.2f} ms, p50 {r["ack_latency_ms"]["p50"]:.2f} ms, acked {r["acked_per_s"]:.0f}/s', r)
EOF
