#!/usr/bin/env bash
# Side by side: deploys the example (staging) to one emulator by the
# wrangler command sequence a team runs for it today (7 x `kv namespace
# create`, `d1 create`, `d1 migrations apply --remote`, `r2 bucket create`,
# `deploy`, 2 x `secret put`, with the pinned wrangler), and to a second,
# fresh emulator by one `flareops apply`. Prints wall time and requests of
# each and their ratio, and records them in docs/PERFORMANCE.md.
# Usage: bench/wrangler-vs-flareops.sh   (needs `npm ci --prefix tools/wrangler`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
wrangler=$repo/tools/wrangler/node_modules/.bin/wrangler
[ -x "$wrangler" ] || { echo "run: npm ci --prefix tools/wrangler" >&2; exit 1; }
# FLAREOPS_BIN: a binary to measure instead of a fresh release build.
if [ -z "${FLAREOPS_BIN:-}" ]; then cargo build --release --quiet; fi
bin=${FLAREOPS_BIN:-$repo/target/release/flareops}
token=bench-token
account=f1a7e0c5d4b3a2918f7e6d5c4b3a2910
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
export CLOUDFLARE_API_TOKEN=$token CLOUDFLARE_ACCOUNT_ID=$account WRANGLER_SEND_METRICS=false
export HOME=$work/home KLEAR_KARMA_JWT_SECRET=bench-jwt KLEAR_KARMA_API_KEY=bench-key
mkdir -p "$HOME"

start_emulator() { # NAME -> prints the API base
  "$bin" emulator --listen 127.0.0.1:0 --state "$work/$1" --token "$token" \
    --account-id "$account" --zone klearkarma.com > "$work/$1.banner" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$1.banner" 2>/dev/null && break; sleep 0.1; done
  awk '/listening/ {print $NF}' "$work/$1.banner"
}
total() { curl -s -H "Authorization: Bearer $token" "${1%/client/v4}/__emulator/stats" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# --- wrangler -------------------------------------------------------------
base=$(start_emulator wrangler)
export CLOUDFLARE_API_BASE_URL=$base
project=$work/wrangler-project
mkdir -p "$project"
cp -r workers/api/src "$project/src"
cp -r migrations/main "$project/migrations"
cd "$project"
before=$(total "$base"); t0=$(now_ms)
for name in users practitioners appointments messages services reviews analytics; do
  "$wrangler" kv namespace create "klear-karma-$name-staging" > /dev/null
done
"$wrangler" d1 create klear-karma-staging --location weur > /dev/null
# wrangler.toml needs the ids the creates printed; read them back by name.
ids=$(curl -s -H "Authorization: Bearer $token" "$base/accounts/$account/storage/kv/namespaces?per_page=100")
db=$(curl -s -H "Authorization: Bearer $token" "$base/accounts/$account/d1/database" \
  | python3 -c 'import json,sys; print([d["uuid"] for d in json.load(sys.stdin)["result"] if d["name"]=="klear-karma-staging"][0])')
python3 - "$ids" "$db" > wrangler.toml <<'PY'
import json, sys
ids = {n["title"]: n["id"] for n in json.loads(sys.argv[1])["result"]}
print('name = "klear-karma-api-staging"\nmain = "src/index.js"\ncompatibility_date = "2025-01-15"')
print('routes = [{ pattern = "api-staging.klearkarma.com/*", zone_name = "klearkarma.com" }]')
print('[triggers]\ncrons = ["0 * * * *"]\n[vars]\nAPI_VERSION = "v1"')
for binding, name in [("USERS_KV", "users"), ("PRACTITIONERS_KV", "practitioners"),
                      ("APPOINTMENTS_KV", "appointments"), ("MESSAGES_KV", "messages"),
                      ("SERVICES_KV", "services"), ("REVIEWS_KV", "reviews"), ("ANALYTICS_KV", "analytics")]:
    print(f'[[kv_namespaces]]\nbinding = "{binding}"\nid = "{ids["klear-karma-" + name + "-staging"]}"')
print(f'[[d1_databases]]\nbinding = "DB"\ndatabase_name = "klear-karma-staging"\ndatabase_id = "{sys.argv[2]}"\nmigrations_dir = "migrations"')
print('[[r2_buckets]]\nbinding = "ASSETS"\nbucket_name = "klear-karma-assets-staging"')
print('[[durable_objects.bindings]]\nname = "CHAT_ROOM"\nclass_name = "ChatRoom"')
print('[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["ChatRoom"]')
PY
"$wrangler" d1 migrations apply klear-karma-staging --remote > /dev/null
"$wrangler" r2 bucket create klear-karma-assets-staging > /dev/null
"$wrangler" deploy > /dev/null
echo "$KLEAR_KARMA_JWT_SECRET" | "$wrangler" secret put JWT_SECRET > /dev/null
echo "$KLEAR_KARMA_API_KEY" | "$wrangler" secret put API_KEY > /dev/null
t1=$(now_ms); after=$(total "$base")
w_req=$((after - before)); w_ms=$((t1 - t0))
cd "$repo"

# --- flareops -------------------------------------------------------------
base=$(start_emulator flareops)
export CLOUDFLARE_API_BASE_URL=$base
project=$work/flareops-project
mkdir -p "$project/environments"
cp -r infra workers migrations "$project/"
sed "s/^account_id: .*/account_id: $account/" environments/staging.yaml > "$project/environments/staging.yaml"
before=$(total "$base"); t0=$(now_ms)
"$bin" --dir "$project" apply --env staging --yes > /dev/null
t1=$(now_ms); after=$(total "$base")
f_req=$((after - before)); f_ms=$((t1 - t0))
"$bin" --dir "$project" plan --env staging --detailed-exitcode > /dev/null

ratio() { python3 -c "print(f'{$1 / max($2, 1):.1f}')"; }
machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(uname -sm), node $(node --version), $(date -u +%Y-%m-%d)"
table="| deployment of the example | wall time (ms) | requests |
|---|---:|---:|
| wrangler command sequence (12 commands) | $w_ms | $w_req |
| \`flareops apply\` (one command, ledger and journal included) | $f_ms | $f_req |
| ratio wrangler / flareops | $(ratio "$w_ms" "$f_ms") | $(ratio "$w_req" "$f_req") |"
echo "$table"
python3 - "$table" "$machine" <<'PY'
import sys, re, pathlib
table, machine = sys.argv[1], sys.argv[2]
path = pathlib.Path("docs/PERFORMANCE.md")
text = path.read_text()
block = f"<!-- side-by-side:begin -->\nLast run: {machine}; flareops release build.\n\n{table}\n<!-- side-by-side:end -->"
text = re.sub(r"<!-- side-by-side:begin -->.*?<!-- side-by-side:end -->", block, text, flags=re.S)
path.write_text(text)
PY
echo "docs/PERFORMANCE.md updated"
