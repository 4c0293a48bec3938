#!/usr/bin/env python3
"""Summarizes grove-bench's JSON lines (from a results file or stdin), one line per run,
then, where Grove and ZooKeeper ran the same workload, Grove's ops/s and server CPU per
operation as a ratio of ZooKeeper's (for watch-fanout: how many times faster Grove's p50 is).

Used by bench-single.sh and bench-cluster.sh: scripts/bench-summary.py results.txt
"""
import json
import sys

src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
runs = []
for line in src:
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    runs.append(r)
    cols = [r["label"], r["workload"], "%.0f ops/s" % r["ops_per_s"], "p50 %.3f ms" % r["p50_ms"], "p99 %.3f ms" % r["p99_ms"]]
    for key in ("server_cpu_us_per_op", "ops_per_fsync"):
        if key in r:
            cols.append("%s %s" % (key, r[key]))
    print("  ".join(cols))

grove = {r["workload"]: r for r in runs if r["target"] == "Grove" and "failover" not in r["label"]}
zk = {r["workload"]: r for r in runs if r["target"] == "Zookeeper"}
shared = [w for w in grove if w in zk]
if shared:
    print()
    print("| workload | Grove ops/s | ZooKeeper ops/s | Grove ÷ ZooKeeper | Grove p99 / ZooKeeper p99 ms | CPU/op Grove ÷ ZooKeeper |")
    print("|---|---|---|---|---|---|")
    for w in shared:
        g, z = grove[w], zk[w]
        if w == "WatchFanout":
            ratio = "%.1f× faster (p50)" % (z["p50_ms"] / g["p50_ms"]) if g["p50_ms"] else "-"
        else:
            ratio = "%.2f" % (g["ops_per_s"] / z["ops_per_s"]) if z["ops_per_s"] else "-"
        cpu = "-"
        if g.get("server_cpu_us_per_op") and z.get("server_cpu_us_per_op"):
            cpu = "%.2f" % (g["server_cpu_us_per_op"] / z["server_cpu_us_per_op"])
        print("| %s | %.0f | %.0f | %s | %.2f / %.2f | %s |" % (w, g["ops_per_s"], z["ops_per_s"], ratio, g["p99_ms"], z["p99_ms"], cpu))
