#!/usr/bin/env bash
# Prints what one `plan` and one no-op `apply` of the example cost against
# the emulator: requests (from its counters, per endpoint) and wall time.
# Usage: bench/plan-cost.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin=target/release/flareops
state=$(mktemp -d)
token=bench-token
account=f1a7e0c5d4b3a2918f7e6d5c4b3a2910
project=$(mktemp -d)
cp -r infra workers migrations "$project/"
mkdir -p "$project/environments"
sed "s/^account_id: .*/account_id: $account/" environments/staging.yaml > "$project/environments/staging.yaml"

"$bin" emulator --listen 127.0.0.1:0 --state "$state" --token "$token" --account-id "$account" \
  --zone klearkarma.com > "$state/banner" 2>/dev/null &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -rf "$state" "$project"' EXIT
for _ in $(seq 50); do grep -q listening "$state/banner" 2>/dev/null && break; sleep 0.1; done
base=$(awk '/listening/ {print $NF}' "$state/banner")
origin=${base%/client/v4}
stats() { curl -s -H "Authorization: Bearer $token" "$origin/__emulator/stats"; }
export CLOUDFLARE_API_BASE_URL=$base CLOUDFLARE_API_TOKEN=$token
export KLEAR_KARMA_JWT_SECRET=bench-jwt KLEAR_KARMA_API_KEY=bench-key

total() { stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

before=$(total)
start=$(date +%s%N)
"$bin" --dir "$project" apply --env staging --yes > /dev/null
end=$(date +%s%N)
after=$(total)
echo "first apply: $((after - before)) requests, $(( (end - start) / 1000000 )) ms"

before=$(total)
start=$(date +%s%N)
for _ in $(seq "$runs"); do "$bin" --dir "$project" plan --env staging > /dev/null; done
end=$(date +%s%N)
after=$(total)
echo "plan (no changes), mean of $runs: $(( (after - before) / runs )) requests, $(( (end - start) / 1000000 / runs )) ms"
echo "requests per endpoint over all runs:"
stats | python3 -c 'import json,sys
for k, v in sorted(json.load(sys.stdin)["endpoints"].items(), key=lambda kv: -kv[1]):
    print(f"  {v:6d}  {k}")'
