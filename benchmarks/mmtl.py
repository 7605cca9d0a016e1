"""Trainer.fit's overhead against a hand-written PyTorch loop (multi-task).

Two tasks share a trunk MLP (``[d, hidden, hidden]`` with ReLUs) and have their
own linear heads. Both contestants start from the same weights, use Adam with
the same learning rate, clip gradients at 1.0 and visit the same batches of the
same ``DictDataLoader``s in the same order (the loaders of both tasks
alternating in a shuffled order drawn from Python's ``random`` with the same
seed). ``Trainer.fit`` runs with its defaults otherwise (a log every epoch);
the plain loop only trains. Runs alternate between the two and the median
times are compared: the verdict uses the process's CPU time (one thread, so
it is the work done, unaffected by other processes competing for the cores);
wall-clock times are printed too.

Usage: ``python3 benchmarks/mmtl.py [--quick] [--hidden N] [--repeats N]``.
Prints the ratio and a PASS/FAIL line for the target (Trainer.fit within 1.1x
of the plain loop).
"""

import argparse
import copy
import random
import statistics
import sys
import time
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.mmtl import (
    DictDataLoader,
    DictDataset,
    MultitaskClassifier,
    Operation,
    Task,
    Trainer,
)

TARGET_RATIO = 1.1
TASKS = ("task_a", "task_b")


def make_loaders(n: int, d: int, batch_size: int, seed: int = 0):
    """One train DictDataLoader per task; labels are two different linear rules."""
    g = torch.Generator().manual_seed(seed)
    loaders = []
    for i, task in enumerate(TASKS):
        X = torch.randn(n, d, generator=g)
        w = torch.randn(d, generator=g)
        Y = ((X @ w) > 0.2 * i).long()
        dataset = DictDataset(f"{task}_data", "train", {"x": X}, {task: Y})
        loaders.append(DictDataLoader(dataset, batch_size=batch_size))
    return loaders


def build_modules(d: int, hidden: int, seed: int = 123):
    torch.manual_seed(seed)
    trunk = nn.Sequential(
        nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )
    heads = {task: nn.Linear(hidden, 2) for task in TASKS}
    return trunk, heads


def timed(func, *args) -> Tuple[float, float]:
    """``(cpu seconds, wall seconds)`` of ``func(*args)``."""
    cpu, wall = time.process_time(), time.perf_counter()
    func(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def time_trainer(modules, loaders, n_epochs: int, lr: float) -> None:
    trunk, heads = copy.deepcopy(modules)
    tasks = [
        Task(
            task,
            nn.ModuleDict({"trunk": trunk, f"{task}_head": heads[task]}),
            [
                Operation("trunk", [("_input_", "x")]),
                Operation(f"{task}_head", ["trunk"]),
            ],
        )
        for task in TASKS
    ]
    model = MultitaskClassifier(tasks)
    trainer = Trainer(n_epochs=n_epochs, lr=lr, progress_bar=False)
    random.seed(0)
    trainer.fit(model, loaders)


def time_plain_loop(modules, loaders, n_epochs: int, lr: float) -> None:
    trunk, heads = copy.deepcopy(modules)
    head_list = [heads[task] for task in TASKS]
    params = list(trunk.parameters()) + [p for h in head_list for p in h.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    random.seed(0)
    trunk.train()
    for _ in range(n_epochs):
        order = [i for i, loader in enumerate(loaders) for _ in range(len(loader))]
        random.shuffle(order)
        iterators = [iter(loader) for loader in loaders]
        for i in order:
            X, Y = next(iterators[i])
            optimizer.zero_grad()
            loss = F.cross_entropy(head_list[i](trunk(X["x"])), Y[TASKS[i]])
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256, help="trunk width")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        n, d, epochs, repeats = 500, 50, 1, 2
    else:
        n, d, epochs, repeats = 4000, 500, 3, args.repeats
    batch_size, lr = 32, 0.01
    loaders = make_loaders(n, d, batch_size)
    modules = build_modules(d, args.hidden)
    print(
        f"2 tasks x {n} examples, trunk [{d}, {args.hidden}, {args.hidden}] + 2 heads, "
        f"batch {batch_size}, {epochs} epochs, Adam, grad clip 1.0, {repeats} "
        "alternating runs each (1 thread)"
    )
    time_trainer(modules, loaders, 1, lr)  # warm-up
    time_plain_loop(modules, loaders, 1, lr)
    runs = {"fit": [], "plain": []}
    for _ in range(repeats):
        runs["fit"].append(timed(time_trainer, modules, loaders, epochs, lr))
        runs["plain"].append(timed(time_plain_loop, modules, loaders, epochs, lr))
    cpu = {k: [c for c, _ in v] for k, v in runs.items()}
    wall = {k: [w for _, w in v] for k, v in runs.items()}
    for label, key in (
        ("Trainer.fit:       ", "fit"),
        ("plain PyTorch loop:", "plain"),
    ):
        print(
            f"{label} cpu {statistics.median(cpu[key]):.3f} s, wall "
            f"{statistics.median(wall[key]):.3f} s (medians; cpu runs "
            f"{_fmt(cpu[key])})"
        )
    ratio = statistics.median(cpu["fit"]) / statistics.median(cpu["plain"])
    wall_ratio = statistics.median(wall["fit"]) / statistics.median(wall["plain"])
    print(
        f"ratio Trainer.fit / plain loop: {ratio:.3f}x cpu time (target <= "
        f"{TARGET_RATIO}x); {wall_ratio:.3f}x wall time; best-of-runs cpu ratio "
        f"{min(cpu['fit']) / min(cpu['plain']):.3f}x"
    )
    if args.quick:
        print("quick run: sizes too small to judge the target")
    else:
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"{verdict}: multi-task Trainer.fit overhead target")
    return 0


def _fmt(times) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


if __name__ == "__main__":
    sys.exit(main())
