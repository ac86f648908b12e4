#!/usr/bin/env python3
"""PyTorch peer of `litevae-bench data-parallel --workloads allreduce`: torch.distributed all-reduce (NCCL).

Times fp32 all-reduce (average) of buffers of the given sizes exactly as RankWorker.AllReduceSweep does:
3 untimed calls, a barrier, then --reps calls enqueued back to back and one device synchronisation;
ms per call = elapsed / reps. One process per rank (torch.multiprocessing), one GPU each; --world 1 gives a
one-GPU communicator, which shows the fixed cost per call (no link involved).

  python3 bench/peers/torch_allreduce.py --world 1 --sizes-mb 0.25,1,4,16,64,256 --out results.json
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank: int, args, queue):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(args.port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=args.world, device_id=torch.device("cuda", rank))
    rows = []
    for mb in args.sizes_mb:
        n = int(mb * (1 << 20) / 4)
        buf = torch.ones(n, dtype=torch.float32, device="cuda")
        for _ in range(3):
            dist.all_reduce(buf, op=dist.ReduceOp.AVG)
        torch.cuda.synchronize()
        dist.barrier()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.reps):
            dist.all_reduce(buf, op=dist.ReduceOp.AVG)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1000 / args.reps
        bus = n * 4 * 2 * (args.world - 1) / args.world / (ms / 1000) / 1e9 if args.world > 1 else 0.0
        rows.append({"mb": mb, "ms": ms, "bus_gb_s": bus})
        if rank == 0:
            print(f"torch all-reduce {mb:8.2f} MB: {ms:8.3f} ms, bus {bus:7.1f} GB/s", flush=True)
    if rank == 0:
        queue.put(rows)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, default=1, help="ranks (one GPU each; default 1)")
    p.add_argument("--sizes-mb", type=lambda s: [float(x) for x in s.split(",")], default=[0.25, 1, 4, 16, 64, 256])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--port", type=int, default=29533)
    p.add_argument("--out", help="JSON results file")
    args = p.parse_args()
    if torch.cuda.device_count() < args.world:
        raise SystemExit(f"--world {args.world} needs {args.world} GPUs, {torch.cuda.device_count()} visible")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.spawn(worker, args=(args, queue), nprocs=args.world, join=True)
    rows = queue.get()
    result = {"benchmark": "torch-allreduce", "torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version())),
              "device": torch.cuda.get_device_name(0), "world": args.world, "reps": args.reps, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
