#!/usr/bin/env python3
"""Summarizes grove-bench's JSON lines (from a results file or stdin), one line per run.

Used by bench-single.sh and bench-cluster.sh: scripts/bench-summary.py results.txt
"""
import json
import sys

src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
for line in src:
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    cols = [r["label"], r["workload"], "%.0f ops/s" % r["ops_per_s"], "p50 %.3f ms" % r["p50_ms"], "p99 %.3f ms" % r["p99_ms"]]
    for key in ("server_cpu_us_per_op", "ops_per_fsync"):
        if key in r:
            cols.append("%s %s" % (key, r[key]))
    print("  ".join(cols))
