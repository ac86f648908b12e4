#!/usr/bin/env python3
"""Summarises a scripts/memory-watch.sh folder as markdown: per node, RSS against the runtime's own view of the
managed heap (gen-2 and large-object heap after each GC, committed bytes) and the early/late GC heap dumps, so a
growing RSS can be told apart from a growing managed heap (a leak of objects) or from native memory.

    python3 scripts/memory-report.py OUTDIR [SKIP_MINUTES=2] > report.md
"""
import csv
import re
import sys
from collections import defaultdict
from datetime import datetime


def slope(points):
    """Least-squares slope of (t seconds, value) in value units per minute; None for fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / den if den else None


def counters(path, skip_s):
    """Counter name -> [(seconds since the first sample, value)], samples in the first skip_s dropped."""
    series = defaultdict(list)
    start = None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            t = datetime.strptime(row["Timestamp"], "%m/%d/%Y %H:%M:%S")
            start = start or t
            s = (t - start).total_seconds()
            if s >= skip_s:
                series[row["Counter Name"]].append((s, float(row["Mean/Increment"])))
    return series


def heap_total(report_path):
    with open(report_path) as f:
        m = re.search(r"([\d,]+)\s+GC Heap bytes", f.read())
    return int(m.group(1).replace(",", "")) if m else None


def top_types(report_path, n=5):
    rows = []
    with open(report_path) as f:
        for line in f:
            m = re.match(r"\s*([\d,]+)\s+([\d,]+)\s+(.+?)\s+\[", line)
            if m:
                rows.append((int(m.group(1).replace(",", "")), int(m.group(2).replace(",", "")), m.group(3)))
    return sorted(rows, reverse=True)[:n]


def mib(v):
    return f"{v / 2**20:.1f}"


def main():
    out = sys.argv[1]
    skip = 60 * float(sys.argv[2]) if len(sys.argv) > 2 else 120
    rss = defaultdict(list)
    with open(f"{out}/rss.csv", newline="") as f:
        for row in csv.DictReader(f):
            t = float(row["time_s"])
            for node in ("trainer", "data"):
                value = row.get(f"{node}_rss_mib")
                if t >= skip and value:
                    rss[node].append((t, float(value)))
    print(f"Nodes ran {max(t for t, _ in rss['trainer']) / 60:.1f} min; slopes fitted after the first {skip / 60:.0f} min.\n")
    print("| node | RSS first → last (MiB) | RSS slope | gen2 + LOH after GC, first → last (MiB) | slope | GC committed first → last (MiB) | gen-2 GCs | live heap in the dumps, early → late (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for node in ("trainer", "data"):
        c = counters(f"{out}/counters-{node}.csv", skip)
        gen2 = c.get("dotnet.gc.last_collection.heap.size (By)[gc.heap.generation=gen2]", [])
        loh = dict(c.get("dotnet.gc.last_collection.heap.size (By)[gc.heap.generation=loh]", []))
        old = [(t, v + loh.get(t, 0)) for t, v in gen2]
        committed = c.get("dotnet.gc.last_collection.memory.committed_size (By)", [])
        gen2_gcs = sum(v for _, v in c.get("dotnet.gc.collections ({collection} / 30 sec)[gc.heap.generation=gen2]", []))
        r = rss[node]
        if not old or not committed or len(r) < 3:
            print(f"| {node} | (no runtime counters: the process was restarted during the run) | | | | | | |")
            continue
        early, late = heap_total(f"{out}/{node}-early-types.txt"), heap_total(f"{out}/{node}-late-types.txt")
        rs, os_ = slope(r), slope([(t, v / 2**20) for t, v in old])
        print(f"| {node} | {r[0][1]:.0f} → {r[-1][1]:.0f} | {rs:+.2f} MiB/min | "
              f"{mib(old[0][1])} → {mib(old[-1][1])} | {os_:+.2f} MiB/min | "
              f"{mib(committed[0][1])} → {mib(committed[-1][1])} | {gen2_gcs:.0f} | "
              f"{mib(early) if early else '?'} → {mib(late) if late else '?'} |")
    for node in ("trainer", "data"):
        print(f"\nLargest live types, {node}, late dump (bytes, count, type):\n")
        for size, count, name in top_types(f"{out}/{node}-late-types.txt"):
            print(f"- {size:,} B, {count:,}: {name}")


if __name__ == "__main__":
    main()
