#!/usr/bin/env python3
"""Where a process's resident memory lives, from /proc/PID/smaps: one CSV line (MiB) per call.

  scripts/rss-breakdown.py PID [--header]

Columns:
  total        VmRSS
  file         file-backed mappings (libraries, mapped shard files: page cache the kernel can drop)
  brk_heap     glibc's main arena ([heap])
  arenas       glibc's other malloc arenas: anonymous runs aligned to and sized in 64 MiB (HEAP_MAX_SIZE)
  gc           the .NET GC's reservation: the anonymous run of at least 4 GiB of address space
  anon_other   every other anonymous mapping: malloc's mmap'd blocks (>= 128 KiB), thread stacks, JIT and
               loader heaps, native library buffers
  threads      the process's thread count (stacks are part of anon_other)
Adjacent anonymous mappings (whatever their permissions) are merged into runs first: glibc arenas and the GC
reserve address space PROT_NONE and commit parts of it, which splits one region into many mappings.
"""
import re
import sys

ARENA = 64 << 20
GC_MIN = 4 << 30


def mappings(pid):
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                if cur:
                    yield cur
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "path": m.group(3).strip(), "rss": 0}
            elif line.startswith("Rss:") and cur is not None:
                cur["rss"] = int(line.split()[1]) * 1024
    if cur:
        yield cur


def breakdown(pid):
    sums = {"file": 0, "brk_heap": 0, "arenas": 0, "gc": 0, "anon_other": 0}
    runs = []
    for m in mappings(pid):
        path = m["path"]
        if path.startswith("/") or path.startswith("anon_inode") or path.startswith("/memfd"):
            sums["file"] += m["rss"]
        elif path == "[heap]":
            sums["brk_heap"] += m["rss"]
        elif path == "":
            if runs and runs[-1]["end"] == m["start"]:
                runs[-1]["end"] = m["end"]
                runs[-1]["rss"] += m["rss"]
            else:
                runs.append(dict(m))
        else:
            sums["anon_other"] += m["rss"]   # [stack], [vdso], [vvar] ...
    for r in runs:
        size = r["end"] - r["start"]
        if size >= GC_MIN:
            sums["gc"] += r["rss"]
        elif r["start"] % ARENA == 0 and size % ARENA == 0:
            sums["arenas"] += r["rss"]
        else:
            sums["anon_other"] += r["rss"]
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    total = int(status["VmRSS"].split()[0]) * 1024
    threads = int(status["Threads"])
    mib = lambda b: f"{b / (1 << 20):.1f}"
    return [mib(total)] + [mib(sums[k]) for k in ("file", "brk_heap", "arenas", "gc", "anon_other")] + [str(threads)]


if __name__ == "__main__":
    if "--header" in sys.argv:
        print("total,file,brk_heap,arenas,gc,anon_other,threads")
    print(",".join(breakdown(int(sys.argv[1]))))
