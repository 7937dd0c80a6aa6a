#!/usr/bin/env python3
"""Writes a flareops project of about N resources for the scale benchmarks.

Usage: bench/generate.py N DIR [ACCOUNT_ID]

The mix follows what a large account holds: 70% KV namespaces, 13% D1
databases, 13% R2 buckets and the rest workers (at least one), each worker
bound to a few namespaces, a database and a bucket of the environment.
"""
import os
import sys


def main() -> None:
    total = int(sys.argv[1])
    root = sys.argv[2]
    account = sys.argv[3] if len(sys.argv) > 3 else "f1a7e0c5d4b3a2918f7e6d5c4b3a2910"
    workers = max(1, total * 2 // 100)
    d1 = max(1, total * 13 // 100)
    r2 = max(1, total * 13 // 100)
    kv = max(1, total - workers - d1 - r2)
    os.makedirs(os.path.join(root, "infra"), exist_ok=True)
    os.makedirs(os.path.join(root, "environments"), exist_ok=True)
    os.makedirs(os.path.join(root, "workers", "bench"), exist_ok=True)
    lines = ["kv_namespaces:"]
    lines += [f"  kv{i:05d}:\n    title: bench-kv-{i:05d}-${{env}}" for i in range(kv)]
    lines.append("d1_databases:")
    lines += [f"  db{i:05d}:\n    name: bench-db-{i:05d}-${{env}}" for i in range(d1)]
    lines.append("r2_buckets:")
    lines += [f"  r2{i:05d}:\n    name: bench-r2-{i:05d}-${{env}}" for i in range(r2)]
    lines.append("workers:")
    for i in range(workers):
        lines.append(f"  w{i:04d}:")
        lines.append(f"    name: bench-worker-{i:04d}-${{env}}")
        lines.append("    main: workers/bench/index.js")
        lines.append('    compatibility_date: "2025-01-15"')
        lines.append("    bindings:")
        for j in range(3):
            lines.append(f"      KV{j}: {{kv_namespace: kv{(i * 3 + j) % kv:05d}}}")
        lines.append(f"      DB: {{d1: db{i % d1:05d}}}")
        lines.append(f"      BUCKET: {{r2_bucket: r2{i % r2:05d}}}")
        lines.append(f'      WORKER: {{text: "{i}"}}')
    with open(os.path.join(root, "infra", "bench.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "environments", "bench.yaml"), "w") as out:
        out.write(f"account_id: {account}\n")
    with open(os.path.join(root, "workers", "bench", "index.js"), "w") as out:
        out.write("export default { fetch() { return new Response('ok'); } };\n")
    print(f"{kv} KV namespaces, {d1} D1 databases, {r2} R2 buckets, {workers} workers")


if __name__ == "__main__":
    main()
