"""MTLabelModel benchmark: multi-task fit + predict against single-task models.

Target (from the project's issue): on t = 3 tasks, n = 100,000 items and m = 20
sources per task, ``MTLabelModel`` fit + predict takes at most 3x the time of
fitting and predicting the three single-task ``LabelModel``s (one per task, on
that task's label matrix) on the same data.

Data: ``HierarchicalMultiTaskTreeDepsGenerator`` (hierarchy K = [2, 3, 3] with
edges (0, 1), (0, 2), so k = 4 feasible label vectors; sparse per-task label
matrices). Both sides use the default config (``n_epochs=100``), seed 0. Timings
alternate between the two sides and report medians. Per-task accuracies are
printed for both. A plain ``TaskGraph([2, 3, 3])`` (k = 18, every combination
feasible) on the same label matrices is reported without a target.

Usage: ``python3 benchmarks/multitask.py [--quick] [--repeats N]``.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from metal.label_model import LabelModel
from metal.metrics import accuracy_score
from metal.multitask import MTLabelModel, TaskGraph
from metal.synthetic.generate import HierarchicalMultiTaskTreeDepsGenerator

TARGET_RATIO = 3.0


def make_data(n: int, m: int):
    np.random.seed(0)
    return HierarchicalMultiTaskTreeDepsGenerator(n, m, edge_prob=0.0)


def time_multitask(data, task_graph):
    start = time.perf_counter()
    model = MTLabelModel(task_graph=task_graph, verbose=False, seed=0)
    model.train_model(data.L)
    probs = model.predict_proba(data.L)
    return time.perf_counter() - start, probs


def time_single_tasks(data):
    start = time.perf_counter()
    probs = []
    for L_s, K_s in zip(data.L, data.task_graph.K):
        model = LabelModel(k=K_s, verbose=False, seed=0)
        model.train_model(L_s)
        probs.append(model.predict_proba(L_s))
    return time.perf_counter() - start, probs


def accuracies(probs, Y):
    return [accuracy_score(Y_s, P_s.argmax(axis=1) + 1) for P_s, Y_s in zip(probs, Y)]


def _fmt(values) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    n, m = (10_000, 20) if args.quick else (100_000, 20)
    repeats = 2 if args.quick else args.repeats
    torch.set_num_threads(1)
    data = make_data(n, m)
    hierarchy = data.task_graph
    print(
        f"t={hierarchy.t} tasks K={hierarchy.K} edges={hierarchy.edges} "
        f"(k={hierarchy.k} feasible vectors), n={n}, m={m} per task, default "
        f"config, {repeats} alternating runs each (1 thread)"
    )
    time_multitask(data, hierarchy)  # warm-up
    time_single_tasks(data)
    mt_times, st_times = [], []
    for _ in range(repeats):
        t_mt, mt_probs = time_multitask(data, hierarchy)
        t_st, st_probs = time_single_tasks(data)
        mt_times.append(t_mt)
        st_times.append(t_st)
    mt, st = statistics.median(mt_times), statistics.median(st_times)
    ratio = mt / st
    print(f"MTLabelModel fit + predict:        {mt:.3f} s (median; {_fmt(mt_times)})")
    print(f"3 x LabelModel fit + predict:      {st:.3f} s (median; {_fmt(st_times)})")
    print(f"accuracy per task, MTLabelModel:   {_fmt(accuracies(mt_probs, data.Y))}")
    print(f"accuracy per task, LabelModel x 3: {_fmt(accuracies(st_probs, data.Y))}")

    plain = TaskGraph(hierarchy.K)
    t_plain, plain_probs = time_multitask(data, plain)
    print(
        f"plain TaskGraph({plain.K}) (k={plain.k}): {t_plain:.3f} s, accuracy per "
        f"task {_fmt(accuracies(plain_probs, data.Y))} (reported, no target)"
    )
    print(
        f"ratio MTLabelModel / 3 single-task models: {ratio:.3f}x (target <= "
        f"{TARGET_RATIO}x; best-of-runs ratio {min(mt_times) / min(st_times):.3f}x)"
    )
    if args.quick:
        print("quick run: sizes too small to judge the target")
    else:
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"{verdict}: MTLabelModel time target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
