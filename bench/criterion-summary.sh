#!/usr/bin/env bash
# Runs the criterion benchmarks of the pipeline's pure middle (load, plan,
# render at 10,000 resources) and writes their medians to
# docs/PERFORMANCE.md (between its markers).
# Usage: bench/criterion-summary.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench pipeline --quiet -- --noplot
machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(uname -sm), $(date -u +%Y-%m-%d)"
python3 - "$machine" <<'PY'
import json, pathlib, re, sys
rows = []
for estimates in sorted(pathlib.Path("target/criterion").glob("**/new/estimates.json")):
    name = estimates.parent.parent.relative_to("target/criterion").as_posix()
    median = json.loads(estimates.read_text())["median"]["point_estimate"] / 1e6
    rows.append(f"| {name} | {median:.1f} |")
table = "| benchmark | median (ms) |\n|---|---:|\n" + "\n".join(rows)
print(table)
path = pathlib.Path("docs/PERFORMANCE.md")
text = path.read_text()
block = f"<!-- criterion:begin -->\nLast run: {sys.argv[1]}, `cargo bench` (optimized).\n\n{table}\n<!-- criterion:end -->"
text = re.sub(r"<!-- criterion:begin -->.*?<!-- criterion:end -->", block, text, flags=re.S)
path.write_text(text)
PY
echo "docs/PERFORMANCE.md updated"
