#!/usr/bin/env bash
# Rate budget: applies a generated environment of N resources (default
# 1,450) to an emulator that enforces Cloudflare's per-token limit
# (`--rate-limit`: 1,200 requests per 5 minutes, then 429), with
# flareops' default limiter (no FLAREOPS_RATE_LIMIT). Prints the plan's
# footer (its estimate), the apply's requests and wall time, and the 429
# answers the emulator gave (the target is none), and writes them to
# docs/PERFORMANCE.md (between its markers). Takes minutes: the limiter
# paces the apply on purpose.
# Usage: bench/rate-budget.sh [RESOURCES]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1450}
if [ -z "${FLAREOPS_BIN:-}" ]; then cargo build --release --quiet; fi
bin=${FLAREOPS_BIN:-$PWD/target/release/flareops}
token=bench-token
account=f1a7e0c5d4b3a2918f7e6d5c4b3a2910
export CLOUDFLARE_API_TOKEN=$token
unset FLAREOPS_RATE_LIMIT
work=$(mktemp -d)
trap 'kill "${emulator:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mix=$(python3 bench/generate.py "$size" "$work/project" "$account")
"$bin" emulator --listen 127.0.0.1:0 --state "$work/state" --token "$token" \
  --account-id "$account" --rate-limit > "$work/banner" 2>/dev/null &
emulator=$!
for _ in $(seq 100); do grep -q listening "$work/banner" 2>/dev/null && break; sleep 0.1; done
base=$(awk '/listening/ {print $NF}' "$work/banner")
origin=${base%/client/v4}
export CLOUDFLARE_API_BASE_URL=$base
stat() { curl -s -H "Authorization: Bearer $token" "$origin/__emulator/stats" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
footer=$("$bin" --dir "$work/project" plan --env bench | grep '^Requests:')
before=$(stat 's["total"]')
start=$(date +%s%N)
"$bin" --dir "$work/project" apply --env bench --yes > "$work/out" 2> "$work/err" || {
  echo "apply failed:" >&2; tail -20 "$work/err" >&2; exit 1; }
end=$(date +%s%N)
requests=$(( $(stat 's["total"]') - before ))
limited=$(stat 's["faults"]["rate_limited"]')
seconds=$(( (end - start) / 1000000000 ))
machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(uname -sm), $(date -u +%Y-%m-%d)"
summary="Last run: $machine, release build. $size resources ($mix), emulator limit 1,200 requests per 5 minutes, flareops' default limiter.

- The plan's footer: \`$footer\`
- The apply: $requests requests in ${seconds} s; 429 answers from the emulator: $limited."
echo "$summary"
python3 - "$summary" <<'PY'
import sys, re, pathlib
path = pathlib.Path("docs/PERFORMANCE.md")
text = path.read_text()
block = f"<!-- rate-budget:begin -->\n{sys.argv[1]}\n<!-- rate-budget:end -->"
text = re.sub(r"<!-- rate-budget:begin -->.*?<!-- rate-budget:end -->", block, text, flags=re.S)
path.write_text(text)
PY
echo "docs/PERFORMANCE.md updated"
