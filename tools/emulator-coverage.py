#!/usr/bin/env python3
"""Fills the coverage columns of docs/emulator.md from a test run.

Run the integration tests with FLAREOPS_COVERAGE_DIR=DIR (every test
emulator then writes the endpoints it served to DIR/<test>-<n>.json), then
`python3 tools/emulator-coverage.py DIR`. Each row of the endpoint table
gets the tests that reached it, by client (told by the User-Agent each
request carries): the real wrangler, the official Python SDK, and flareops'
own client (or a test's raw requests). An endpoint a
test reached that the table does not list is an error: the table must list
every endpoint the emulator serves.
"""
import json
import pathlib
import re
import sys

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "emulator.md"
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|")
WRANGLER = {"wrangler", "seed_workflow", "queues", "pages"}
SDK = {"python_sdk"}
# The emulator's names for the clients it tells apart by User-Agent.
CLIENTS = {"wrangler": "wrangler", "python_sdk": "sdk", "flareops": "flareops", "other": "flareops"}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    reached: dict[str, dict[str, set[str]]] = {}
    for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
        test = re.sub(r"-\d+$", "", path.stem)
        module = test.split(".")[0]
        client = "wrangler" if module in WRANGLER else "sdk" if module in SDK else "flareops"
        stats = json.loads(path.read_text())
        # Counts per client, told by User-Agent, where the stats carry them;
        # else the test module's client.
        by_client = {CLIENTS.get(name, "flareops"): counts for name, counts in stats.get("clients", {}).items()}
        if not by_client:
            by_client = {client: stats.get("endpoints", {})}
        for client, counts in by_client.items():
            for endpoint, count in counts.items():
                if count and not endpoint.endswith("(no route)"):
                    reached.setdefault(endpoint, {}).setdefault(client, set()).add(module)
    lines = DOC.read_text().splitlines()
    listed = set()
    out = []
    for line in lines:
        match = ROW.match(line)
        if match:
            endpoint = f"{match.group(1)} {match.group(2)}"
            listed.add(endpoint)
            clients = reached.get(endpoint, {})

            def cell(client: str) -> str:
                return ", ".join(sorted(clients.get(client, set()))) or "-"

            line = f"| {match.group(1)} | `{match.group(2)}` | {cell('wrangler')} | {cell('sdk')} | {cell('flareops')} |"
        out.append(line)
    DOC.write_text("\n".join(out) + "\n")
    unlisted = sorted(set(reached) - listed)
    for endpoint in unlisted:
        print(f"not in docs/emulator.md: {endpoint}", file=sys.stderr)
    untested = sorted(listed - set(reached))
    print(f"{len(listed)} endpoints listed; {len(listed) - len(untested)} reached by a test")
    for endpoint in untested:
        print(f"  reached by no test: {endpoint}")
    return 1 if unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
