"""torch.distributed all_reduce over gloo: one rank of the bench:compare baseline.

Each rank runs one thread. Per size: warm-up all-reduces, then timed ones, each started right
after a barrier and timed by the rank itself; an iteration takes the slowest rank's time (a MAX
all-reduce of the times, outside the timed region). Every result is checked. Rank 0 prints one
JSON line: {"torch": version, "cases": [{"floats", "ms": [...]}]}.
"""

import argparse
import json
import time

import torch
import torch.distributed as dist


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--floats", type=str, required=True, help="comma-separated buffer sizes in fp32 elements")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=str, required=True, help="timed iterations per size, comma-separated")
    a = p.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=a.rank, world_size=a.world
    )
    total = a.world * (a.world + 1) / 2
    cases = []
    sizes = [int(s) for s in a.floats.split(",")]
    iters = [int(s) for s in a.iters.split(",")]
    for floats, n in zip(sizes, iters):
        buf = torch.empty(floats, dtype=torch.float32)
        times = []
        for i in range(a.warmup + n):
            buf.fill_(a.rank + 1)
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            ms = (time.perf_counter() - t0) * 1000
            if not bool(torch.all(buf == total)):
                raise SystemExit(f"rank {a.rank}: wrong all_reduce result for {floats} floats, expected {total}")
            slowest = torch.tensor([ms], dtype=torch.float64)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
            if i >= a.warmup:
                times.append(float(slowest.item()))
        cases.append({"floats": floats, "ms": times})
    # Every rank reaches teardown together: a rank torn down while a peer still talks to it aborts.
    dist.barrier()
    dist.destroy_process_group()
    if a.rank == 0:
        print(json.dumps({"torch": torch.__version__, "cases": cases}), flush=True)


if __name__ == "__main__":
    main()
