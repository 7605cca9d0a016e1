"""Data-parallel EndModel training: 2 processes (torchrun, gloo) against 1.

Both train the same CPU-bound MLP (``[d, hidden, hidden, 2]``, ReLU, Adam,
the same seed and per-process batch size) through ``EndModel.train_model`` on
the same in-memory training set, each process with one torch thread. The
single process trains on the whole set; under ``torch.distributed.run
--nproc_per_node=2`` each rank trains on its half (``metal.distributed``
shards it and averages gradients with DistributedDataParallel). The time is
that of ``train_model`` alone (process start-up and the process group's
rendezvous excluded), from a barrier before it to one after it; runs alternate
between the set-ups and median throughputs are compared. A third set-up, two
processes training at once on half the data each without any communication,
shows what the machine's cores allow at the time (the ceiling of the ratio).

Usage: ``python3 benchmarks/data_parallel.py [--quick] [--repeats N]``. Prints
examples per second of both, their ratio and a PASS/FAIL line for the target
(2 processes at least 1.6x the examples/s of 1). The ratio needs two idle
cores: on a machine shared with other work it is lower, which the printed CPU
share of each process (CPU seconds per wall-clock second, about 1 for a
process with a core of its own) shows.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np
import torch
import torch.distributed as dist

from metal.end_model import EndModel

TARGET_RATIO = 1.6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(n: int, d: int, seed: int = 0):
    """Float32 features ``[n, d]`` and labels in {1, 2} from a hyperplane."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d).astype(np.float32)
    Y = (X @ w > 0).astype(np.int64) + 1
    return torch.from_numpy(X), torch.from_numpy(Y)


# ------------------------------------------------------------------- a worker
def worker(out_path: str, n: int, d: int, hidden: int, epochs: int, batch: int):
    """Train once and write ``{"seconds", "examples", "cpu"}`` to
    ``out_path`` (rank 0 only when torchrun started this process). Without a
    process group, the process waits for the file ``<out_path>.go`` (after
    writing ``<out_path>.ready``) so that concurrent runs start together."""
    torch.set_num_threads(1)
    if "WORLD_SIZE" in os.environ:
        dist.init_process_group("gloo")
    X, Y = make_data(n, d)
    model = EndModel(
        [d, hidden, hidden, 2],
        seed=123,
        verbose=False,
        n_epochs=epochs,
        batch_size=batch,
        checkpoint=False,
    )
    if dist.is_initialized():
        dist.barrier()
    else:
        open(out_path + ".ready", "w").close()
        while not os.path.exists(out_path + ".go"):
            time.sleep(0.01)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.train_model((X, Y))
    cpu = time.process_time() - cpu_start
    if dist.is_initialized():
        dist.barrier()
    seconds = time.perf_counter() - start
    cpu_shares = [cpu / seconds]
    if dist.is_initialized():
        cpu_shares = [None] * dist.get_world_size()
        dist.all_gather_object(cpu_shares, cpu / seconds)
    if not dist.is_initialized() or dist.get_rank() == 0:
        result = {"seconds": seconds, "examples": n * epochs, "cpu": cpu_shares}
        with open(out_path, "w") as f:
            json.dump(result, f)
    if dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------- a driver
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(command: list) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        output, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"a benchmark process failed:\n{output.decode()}")


def run_once(setup: str, sizes: list) -> dict:
    """One training run: ``"single"`` (one process, all the data), ``"ddp"``
    (two ranks under torchrun, each half the data) or ``"independent"`` (two
    processes at once without a group, each on half the data: what the
    machine's cores allow at that moment, with no communication at all).

    Returns ``examples_per_s`` and ``cpu`` (each process's CPU seconds per
    wall-clock second: about 1 when it had a core to itself)."""
    n, *rest = sizes
    with tempfile.TemporaryDirectory() as folder:
        outs = [os.path.join(folder, f"result{i}.json") for i in range(2)]
        script = os.path.abspath(__file__)
        if setup == "ddp":
            command = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node=2",
                "--nnodes=1",
                "--master_addr=127.0.0.1",
                f"--master_port={_free_port()}",
                script,
                "--worker",
                outs[0],
                *map(str, sizes),
            ]
            _wait([_launch(command)])
            outs = outs[:1]
        else:
            if setup == "single":
                outs, share = outs[:1], n
            else:
                share = n // 2
            args = [str(share), *map(str, rest)]
            processes = [
                _launch([sys.executable, script, "--worker", out, *args])
                for out in outs
            ]
            while not all(os.path.exists(out + ".ready") for out in outs):
                if any(p.poll() is not None for p in processes):
                    break
                time.sleep(0.01)
            for out in outs:
                open(out + ".go", "w").close()
            _wait(processes)
        results = []
        for out in outs:
            with open(out) as f:
                results.append(json.load(f))
    seconds = max(r["seconds"] for r in results)
    examples = sum(r["examples"] for r in results)
    cpu = [share for r in results for share in r["cpu"]]
    return {"examples_per_s": examples / seconds, "cpu": cpu}


SETUPS = (
    ("single", "1 process:                      "),
    ("ddp", "2 ranks, DDP (torchrun, gloo):  "),
    ("independent", "2 processes, no communication:  "),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512, help="batch per process")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        out, *sizes = args.worker
        worker(out, *map(int, sizes))
        return 0
    if args.quick:
        n, d, hidden, epochs, batch, repeats = 2048, 128, 256, 1, 64, 1
    else:
        n, d, hidden, epochs, repeats = 16384, 256, 1024, 2, args.repeats
        batch = args.batch
    sizes = [n, d, hidden, epochs, batch]
    print(
        f"MLP [{d}, {hidden}, {hidden}, 2], {n} examples, batch {batch} per "
        f"process, {epochs} epochs, Adam, 1 thread per process, gloo on "
        f"127.0.0.1; {repeats} alternating runs each ({os.cpu_count()} cores)"
    )
    runs: Dict[str, list] = {setup: [] for setup, _ in SETUPS}
    for _ in range(repeats):
        for setup, _ in SETUPS:
            runs[setup].append(run_once(setup, sizes))
    speed = {}
    for setup, label in SETUPS:
        speeds = [r["examples_per_s"] for r in runs[setup]]
        shares = [share for r in runs[setup] for share in r["cpu"]]
        speed[setup] = statistics.median(speeds)
        print(
            f"{label}{speed[setup]:8.0f} examples/s (median; runs {_fmt(speeds)}); "
            f"CPU per process {min(shares):.2f}-{max(shares):.2f} of a core"
        )
    ratio = speed["ddp"] / speed["single"]
    ceiling = speed["independent"] / speed["single"]
    print(
        f"ratio DDP / 1 process: {ratio:.2f}x (target >= {TARGET_RATIO}x); "
        f"this machine's ceiling now (2 independent processes / 1): {ceiling:.2f}x"
    )
    if args.quick:
        print("quick run: sizes too small to judge the target")
    else:
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        print(f"{verdict}: data-parallel speed-up target")
    return 0


def _fmt(values) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
