#!/usr/bin/env python3
"""PIL side of the data-decode benchmark (run by `litevae-bench data-decode` in the same run).

Does the same work as the C# side for every line of the plan file: decode the JPEG, convert to RGB,
bicubic resize to (rw, rh), crop R x R at (x, y), mirror if flip. Modes:
  plain  Image.open -> convert("RGB") -> resize(BICUBIC) -> crop   (what a typical PyTorch loader does)
  draft  the same, but first im.draft("RGB", (2*rw, 2*rh)) so libjpeg decodes at 1/2, 1/4 or 1/8
         scale when the target is small enough (PIL's own DCT-domain shortcut; the strongest PIL peer)
Prints one JSON line: images, seconds (wall), cpu_seconds (this process and its workers),
images_per_s, images_per_cpu_s, peak_rss_kb.
"""
import argparse, json, multiprocessing as mp, os, resource, time
from PIL import Image

def load_plan(path):
    plans = []
    with open(path) as f:
        for line in f:
            p, rw, rh, x, y, flip, r = line.rstrip("\n").split("\t")
            plans.append((p, int(rw), int(rh), int(x), int(y), flip == "1", int(r)))
    return plans

def work(plan, mode):
    p, rw, rh, x, y, flip, r = plan
    im = Image.open(p)
    if mode == "draft":
        im.draft("RGB", (2 * rw, 2 * rh))
    im = im.convert("RGB").resize((rw, rh), Image.BICUBIC).crop((x, y, x + r, y + r))
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im.load()
    return im

def run_for(plans, mode, seconds, start_index):
    n, i = 0, start_index
    t0 = time.perf_counter()
    while True:
        work(plans[i % len(plans)], mode)
        n += 1
        i += 1
        if n % 8 == 0 and time.perf_counter() - t0 >= seconds:
            return n, time.perf_counter() - t0

def worker(args):
    plans, mode, seconds, start = args
    return run_for(plans, mode, seconds, start)

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--plan", required=True)
    a.add_argument("--mode", choices=["plain", "draft"], default="plain")
    a.add_argument("--processes", type=int, default=1)
    a.add_argument("--seconds", type=float, default=3.0)
    a.add_argument("--dump", help="write the first plan's output per image (C x H x W bytes) to this folder")
    o = a.parse_args()
    plans = load_plan(o.plan)
    if o.dump:
        os.makedirs(o.dump, exist_ok=True)
        seen = set()
        for k, plan in enumerate(plans):
            if plan[0] in seen: continue
            seen.add(plan[0])
            im = work(plan, "plain")
            data = im.tobytes()  # H x W x 3
            r = plan[6]
            chw = bytes(data[(i * 3) + c] for c in range(3) for i in range(r * r))
            open(os.path.join(o.dump, f"{k}.chw"), "wb").write(chw)
    for plan in plans[: min(len(plans), 16)]:  # warm-up
        work(plan, o.mode)
    cpu0 = time.process_time()
    if o.processes == 1:
        n, secs = run_for(plans, o.mode, o.seconds, 0)
        cpu = time.process_time() - cpu0
    else:
        with mp.Pool(o.processes) as pool:
            t0 = time.perf_counter()
            step = len(plans) // o.processes
            results = pool.map(worker, [(plans, o.mode, o.seconds, k * step) for k in range(o.processes)])
            secs = time.perf_counter() - t0
            n = sum(r[0] for r in results)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"images": n, "seconds": secs, "cpu_seconds": cpu, "images_per_s": n / secs,
                      "images_per_cpu_s": n / cpu, "peak_rss_kb": rss}))

if __name__ == "__main__":
    main()
