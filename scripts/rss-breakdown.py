#!/usr/bin/env python3
"""Where a process's resident memory lives, from /proc/PID/smaps: one CSV line (MiB) per call.

  scripts/rss-breakdown.py PID [--header]
  scripts/rss-breakdown.py --diff EARLY LATE    two saved copies of /proc/PID/smaps: the mappings whose RSS
                                                changed most, with their kind (what grew between the two)

Columns:
  total        VmRSS
  file         file-backed mappings (libraries, mapped shard files: page cache the kernel can drop)
  jit          the runtime's executable memory (JIT code, stubs, loader heaps): with W^X on (the default) it
               is double-mapped through a memfd, so it looks file-backed but is not page cache
  brk_heap     glibc's main arena ([heap])
  arenas       glibc's other malloc arenas: each is one 64 MiB-aligned, 64 MiB region (HEAP_MAX_SIZE) of
               anonymous mappings, its unused part PROT_NONE
  anon_other   every other anonymous mapping: the .NET GC's committed memory (dotnet-counters' "GC Committed
               Bytes" says how much of it), malloc's mmap'd blocks (>= 128 KiB), thread stacks, JIT and loader
               heaps, native library buffers
  threads      the process's thread count (their stacks are part of anon_other)
"""
import re
import sys

ARENA = 64 << 20


def mappings(smaps_path):
    cur = None
    with open(smaps_path) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                if cur:
                    yield cur
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                       "path": m.group(4).strip(), "rss": 0}
            elif line.startswith("Rss:") and cur is not None:
                cur["rss"] = int(line.split()[1]) * 1024
    if cur:
        yield cur


def arena_starts(maps):
    """Starts of glibc arena heaps: an anonymous mapping at a 64 MiB boundary whose contiguous anonymous
    successors end exactly 64 MiB later (the heap's used part, then its PROT_NONE rest). A bigger region that
    merely starts on the boundary (the GC's reservation) has no mapping boundary there and is not counted."""
    starts = set()
    for i, m in enumerate(maps):
        if m["path"] or m["start"] % ARENA:
            continue
        end, j = m["end"], i
        while end < m["start"] + ARENA and j + 1 < len(maps) and not maps[j + 1]["path"] and maps[j + 1]["start"] == end:
            j += 1
            end = maps[j]["end"]
        if end == m["start"] + ARENA:
            starts.add(m["start"])
    return starts


def classify(maps):
    """(kind, mapping) for every mapping: file, jit, brk_heap, arenas or anon_other."""
    starts = arena_starts(maps)
    arena_end = 0
    for m in maps:
        path = m["path"]
        if m["start"] in starts:
            arena_end = m["start"] + ARENA
        if path.startswith("/memfd:doublemapper"):
            yield "jit", m
        elif path.startswith("/") or path.startswith("anon_inode"):
            yield "file", m
        elif path == "[heap]":
            yield "brk_heap", m
        elif path == "" and m["start"] < arena_end:
            yield "arenas", m
        else:
            yield "anon_other", m   # also [stack], [vdso], [vvar] ...


def breakdown(pid):
    sums = {"file": 0, "jit": 0, "brk_heap": 0, "arenas": 0, "anon_other": 0}
    for kind, m in classify(list(mappings(f"/proc/{pid}/smaps"))):
        sums[kind] += m["rss"]
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    total = int(status["VmRSS"].split()[0]) * 1024
    threads = int(status["Threads"])
    mib = lambda b: f"{b / (1 << 20):.1f}"
    return [mib(total)] + [mib(sums[k]) for k in ("file", "jit", "brk_heap", "arenas", "anon_other")] + [str(threads)]


def diff(early_path, late_path, top=25):
    early = {m["start"]: (k, m) for k, m in classify(list(mappings(early_path)))}
    late = {m["start"]: (k, m) for k, m in classify(list(mappings(late_path)))}
    rows, by_kind = [], {}
    for start in set(early) | set(late):
        kind, m = late.get(start) or early[start]
        delta = (late[start][1]["rss"] if start in late else 0) - (early[start][1]["rss"] if start in early else 0)
        by_kind[kind] = by_kind.get(kind, 0) + delta
        if delta:
            rows.append((delta, kind, m, "new" if start not in early else "gone" if start not in late else ""))
    print("kind,rss_change_mib")
    for kind, delta in sorted(by_kind.items(), key=lambda kv: -abs(kv[1])):
        print(f"{kind},{delta / (1 << 20):+.1f}")
    print()
    print("rss_change_kib,kind,start,size_kib,perms,path,note")
    for delta, kind, m, note in sorted(rows, key=lambda r: -abs(r[0]))[:top]:
        print(f"{delta >> 10:+d},{kind},{m['start']:#x},{(m['end'] - m['start']) >> 10},{m['perms']},{m['path']},{note}")


if __name__ == "__main__":
    if sys.argv[1] == "--diff":
        diff(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if "--header" in sys.argv:
        print("total,file,jit,brk_heap,arenas,anon_other,threads")
    print(",".join(breakdown(int(sys.argv[1]))))
