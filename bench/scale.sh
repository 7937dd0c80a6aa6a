#!/usr/bin/env bash
# Scale benchmark: for each size (resources) and each added latency, applies
# a generated environment to a fresh emulator, then plans and applies again
# with nothing to change. Prints requests (the emulator's counters), wall
# time and peak RSS of each run, and writes the table to
# docs/PERFORMANCE.md (between its markers).
# Usage: bench/scale.sh [SIZES] [LATENCIES_MS]   e.g. bench/scale.sh "100 1000 5000" "0 50"
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"100 1000 5000"}
latencies=${2:-"0 50"}
# FLAREOPS_BIN: a binary to measure instead of a fresh release build.
if [ -z "${FLAREOPS_BIN:-}" ]; then cargo build --release --quiet; fi
bin=${FLAREOPS_BIN:-$PWD/target/release/flareops}
token=bench-token
account=f1a7e0c5d4b3a2918f7e6d5c4b3a2910
export CLOUDFLARE_API_TOKEN=$token FLAREOPS_RATE_LIMIT=off WRANGLER_SEND_METRICS=false
rows=()

# Runs flareops with ARGS; prints "requests wall_ms peak_rss_mb".
measure() {
  local origin=$1; shift
  local before after start end rss
  before=$(curl -s -H "Authorization: Bearer $token" "$origin/__emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  start=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$work/rss" "$bin" --dir "$work/project" "$@" > "$work/out" 2> "$work/err" || {
    echo "flareops $* failed:" >&2; tail -20 "$work/err" >&2; exit 1; }
  end=$(date +%s%N)
  after=$(curl -s -H "Authorization: Bearer $token" "$origin/__emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  rss=$(( $(tail -1 "$work/rss") / 1024 ))
  echo "$((after - before)) $(( (end - start) / 1000000 )) $rss"
}

for size in $sizes; do
  for latency in $latencies; do
    work=$(mktemp -d)
    mix=$(python3 bench/generate.py "$size" "$work/project" "$account")
    "$bin" emulator --listen 127.0.0.1:0 --state "$work/state" --token "$token" \
      --account-id "$account" --fault-latency-ms "$latency" > "$work/banner" 2>/dev/null &
    emulator=$!
    for _ in $(seq 100); do grep -q listening "$work/banner" 2>/dev/null && break; sleep 0.1; done
    base=$(awk '/listening/ {print $NF}' "$work/banner")
    origin=${base%/client/v4}
    export CLOUDFLARE_API_BASE_URL=$base
    # The plan of the first apply, for its critical path: reading (3 rounds:
    # lists, each worker's reads, the deployed version), the ledger (2),
    # each wave's journal write and its longest change, the closing write.
    "$bin" --dir "$work/project" plan --env bench --format json > "$work/plan.json"
    depth=$(python3 - "$work/plan.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
waves = {}
for change in plan["changes"]:
    wave = "workers" if change["address"].startswith("workers.") else "storage"
    waves[wave] = max(waves.get(wave, 0), len(change["steps"]))
print(3 + 2 + sum(1 + steps for steps in waves.values()) + 1)
PY
)
    read -r a_req a_ms a_rss < <(measure "$origin" apply --env bench --yes)
    # At most 8 requests in flight: the work alone takes requests / 8
    # round trips; the bound is the longer of that and the critical path.
    rounds=$(( (a_req + 7) / 8 )); [ "$depth" -gt "$rounds" ] && rounds=$depth
    bound_ms=$(( rounds * latency ))
    read -r p_req p_ms p_rss < <(measure "$origin" plan --env bench)
    read -r n_req n_ms n_rss < <(measure "$origin" apply --env bench --yes)
    grep -q "No changes" "$work/out" || { echo "the second apply was not a no-op" >&2; exit 1; }
    kill "$emulator" 2>/dev/null || true
    wait "$emulator" 2>/dev/null || true
    row="| $size | $latency | $a_req | $a_ms | $bound_ms | $a_rss | $p_req | $p_ms | $p_rss | $n_req | $n_ms | $n_rss |"
    echo "$row   ($mix)"
    rows+=("$row")
    rm -rf "$work"
  done
done

table="| resources | latency (ms) | first apply: requests | ms | bound ms | MB | no-op plan: requests | ms | MB | no-op apply: requests | ms | MB |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do table+=$'\n'"$row"; done
machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(uname -sm), $(date -u +%Y-%m-%d)"
python3 - "$table" "$machine" <<'PY'
import sys, re, pathlib
table, machine = sys.argv[1], sys.argv[2]
path = pathlib.Path("docs/PERFORMANCE.md")
text = path.read_text()
block = f"<!-- scale:begin -->\nLast run: {machine}, release build, rate limit off.\n\n{table}\n<!-- scale:end -->"
text = re.sub(r"<!-- scale:begin -->.*?<!-- scale:end -->", block, text, flags=re.S)
path.write_text(text)
PY
echo "docs/PERFORMANCE.md updated"
