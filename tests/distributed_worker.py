"""One rank of the data-parallel tests (``tests/test_distributed.py``).

Launched by ``torch.distributed.run`` with two processes on 127.0.0.1; it
initialises a gloo process group, trains through each front door of the
engine in turn (EndModel on an ``(X, Y)`` tuple, EndModel on a DataLoader, the
mmtl ``Trainer.fit``, ``MultitaskTrainer.train_model``) and writes what it
saw to ``<out_dir>/rank<r>.json``: the item indices of every training batch,
the metrics of every log event, the final weights, the run's best-model facts,
the accuracy reached and, on rank 0, the weights in the best-model file. Each
rank writes its run logs and checkpoints to its own ``<name>_r<rank>``
folders, so the test can tell who wrote what.

The optional second argument is the backend (``gloo``, the default, or
``nccl``: one GPU per rank).

Usage, from the repository root (as a module: run as a script, ``tests/``
would come first on ``sys.path`` and ``tests/logging`` would hide the
standard library's ``logging``): ``python -m torch.distributed.run
--nproc_per_node=2 ... -m tests.distributed_worker OUT_DIR``.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

import metal.engine
from metal.end_model import EndModel
from metal.logging.checkpointer import load_checkpoint
from metal.mmtl import (
    ClassificationTask,
    DictDataLoader,
    DictDataset,
    MetalModel,
    MmtlDataLoader,
    MmtlDataset,
    MultitaskClassifier,
    MultitaskTrainer,
    Operation,
    Payload,
    Task,
    Trainer,
)

N_TRAIN, N_VALID = 240, 100
# The EndModels' device setting: "cuda" under NCCL (each rank then trains on
# cuda:LOCAL_RANK); the mmtl models use their default (GPU 0 when present).
DEVICE = {"device": "cpu"}


# ------------------------------------------------------------ what a rank saw
class Record:
    """Log events and results of the engine, captured by wrapping it."""

    logs: list = []
    results: list = []


def _capture_engine() -> None:
    log_metrics = metal.engine.Engine._log_metrics
    fit = metal.engine.Engine.fit

    def recording_log_metrics(self, validate):
        metrics = log_metrics(self, validate)
        Record.logs.append({k: float(v) for k, v in metrics.items()})
        return metrics

    def recording_fit(self, *args, **kwargs):
        result = fit(self, *args, **kwargs)
        Record.results.append(
            {
                "best_iteration": result.best_iteration,
                "best_score": result.best_score,
                "best_restored": result.best_restored,
            }
        )
        return result

    metal.engine.Engine._log_metrics = recording_log_metrics
    metal.engine.Engine.fit = recording_fit


def _weights(model: nn.Module) -> dict:
    return {
        k: v.detach().cpu().reshape(-1).tolist() for k, v in model.state_dict().items()
    }


def _file_weights(path: str) -> dict:
    bundle = load_checkpoint(path)
    return {k: v.reshape(-1).tolist() for k, v in bundle["model"].items()}


def _files(folder: str) -> list:
    if not os.path.isdir(folder):
        return []
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def _separable(n: int, seed: int, offset: float = 0.0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    Y = (X[:, 0] + X[:, 1] > offset).astype(np.int64)
    return torch.from_numpy(X), torch.from_numpy(Y)


def _scenario_result(name, out_dir, rank, model, seen, accuracy, best_file=None):
    result = {
        "seen": seen,
        "logs": list(Record.logs),
        "result": Record.results[-1],
        "weights": _weights(model),
        "accuracy": float(accuracy),
        "files": {
            kind: _files(os.path.join(out_dir, f"{name}_{kind}_r{rank}"))
            for kind in ("ckpt", "logs")
        },
    }
    if best_file is not None and os.path.exists(best_file):
        result["best_file_weights"] = _file_weights(best_file)
    Record.logs.clear()
    return result


# ------------------------------------------------------------------ scenarios
def _record_items(model: EndModel, X: torch.Tensor) -> list:
    """The indices (rows of ``X``) of every example ``model`` trains on, in
    order, filled in as it trains."""
    index_of = {tuple(row): i for i, row in enumerate(X.tolist())}
    seen: list = []
    make_loss = model._get_loss_fn

    def recording_loss_fn():
        loss_fn = make_loss()

        def loss(Xb, Yb):
            seen.extend(index_of[tuple(row)] for row in Xb.tolist())
            return loss_fn(Xb, Yb)

        return loss

    model._get_loss_fn = recording_loss_fn
    return seen


def end_model_on_tuples(out_dir: str, rank: int) -> dict:
    X, y = _separable(N_TRAIN, 0)
    Xv, yv = _separable(N_VALID, 1)
    model = EndModel([2, 16, 2], seed=1, verbose=False, **DEVICE)
    seen = _record_items(model, X)
    ckpt = os.path.join(out_dir, f"em_ckpt_r{rank}")
    model.train_model(
        (X, y + 1),
        valid_data=(Xv, yv + 1),
        n_epochs=4,
        batch_size=16,
        lr=0.05,
        checkpoint=True,
        checkpoint_dir=ckpt,
        writer="json",
        writer_config={"log_dir": os.path.join(out_dir, f"em_logs_r{rank}")},
        verbose=True,
    )
    accuracy = model.score((Xv, yv + 1), verbose=False)
    return _scenario_result(
        "em", out_dir, rank, model, seen, accuracy, os.path.join(ckpt, "best_model.pth")
    )


def gradient_average(out_dir: str, rank: int) -> dict:
    """One plain SGD step on 8 examples, 4 per rank, against the same step
    computed by hand in one process on all 8 (the mean gradient)."""
    X, y = _separable(8, 5)
    Y = y + 1
    model = EndModel([2, 3, 2], seed=7, verbose=False, **DEVICE)
    reference = EndModel([2, 3, 2], seed=7, verbose=False, **DEVICE)
    loss = reference._get_loss_fn()(X.to(reference._device()), Y)
    loss.backward()
    with torch.no_grad():
        for param in reference.parameters():
            param -= 0.5 * param.grad
    model.train_model(
        (X, Y),
        n_epochs=1,
        batch_size=4,
        shuffle=False,
        optimizer="sgd",
        lr=0.5,
        momentum=0.0,
        checkpoint=False,
    )
    return {
        "weights": _weights(model),
        "reference": _weights(reference),
    }


class PairDataset(Dataset):
    """``(x, y)`` items of two tensors."""

    def __init__(self, X, Y):
        self.X, self.Y = X, Y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], self.Y[index]


def end_model_on_loader(out_dir: str, rank: int) -> dict:
    X, y = _separable(N_TRAIN, 2)
    Xv, yv = _separable(N_VALID, 3)
    loader = DataLoader(PairDataset(X, y + 1), batch_size=16, shuffle=True)
    model = EndModel([2, 16, 2], seed=2, verbose=False, **DEVICE)
    seen = _record_items(model, X)
    model.train_model(loader, valid_data=(Xv, yv + 1), n_epochs=3, lr=0.05)
    accuracy = model.score((Xv, yv + 1), verbose=False)
    return _scenario_result("emdl", out_dir, rank, model, seen, accuracy)


class Recording:
    """Mixin for a dataset class: notes every index read, in ``seen``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def __getitem__(self, index):
        self.seen.append(int(index))
        return super().__getitem__(index)


class RecordingDictDataset(Recording, DictDataset):
    """A ``DictDataset`` that notes every index read."""


def mmtl_trainer(out_dir: str, rank: int) -> dict:
    torch.manual_seed(3)
    loaders, train_sets = [], []
    for i, offset in enumerate((0.0, 0.25)):
        for split, n, seed in (("train", N_TRAIN, 10 + i), ("valid", N_VALID, 20 + i)):
            X, Y = _separable(n, seed, offset)
            name = f"task{i + 1}"
            dataset = RecordingDictDataset("data", split, {"coordinates": X}, {name: Y})
            if split == "train":
                train_sets.append(dataset)
            loaders.append(
                DictDataLoader(dataset, batch_size=16, shuffle=split == "train")
            )
    trunk = nn.Sequential(nn.Linear(2, 16), nn.ReLU())
    tasks = [
        Task(
            name,
            nn.ModuleDict({"trunk": trunk, f"{name}_head": nn.Linear(16, 2)}),
            [
                Operation("trunk", [("_input_", "coordinates")]),
                Operation(f"{name}_head", ["trunk"]),
            ],
        )
        for name in ("task1", "task2")
    ]
    model = MultitaskClassifier(tasks)
    ckpt = os.path.join(out_dir, f"mmtl_ckpt_r{rank}")
    Trainer(
        lr=0.02,
        n_epochs=4,
        progress_bar=True,
        checkpointing=True,
        checkpointer_config={
            "checkpoint_dir": ckpt,
            "checkpoint_metric": "task1/data/valid/accuracy:max",
        },
        logging=True,
        log_writer_config={
            "log_dir": os.path.join(out_dir, f"mmtl_logs_r{rank}"),
            "run_name": "run",
        },
    ).fit(model, loaders)
    seen = {next(iter(ds.Y_dict)): list(ds.seen) for ds in train_sets}
    scores = model.score(loaders)
    accuracy = min(scores[f"task{i}/data/valid/accuracy"] for i in (1, 2))
    return _scenario_result(
        "mmtl",
        out_dir,
        rank,
        model,
        seen,
        accuracy,
        os.path.join(ckpt, "best_model_task1_data_valid_accuracy.pth"),
    )


class RecordingMmtlDataset(Recording, MmtlDataset):
    """An ``MmtlDataset`` that notes every index read."""


def multitask_trainer(out_dir: str, rank: int) -> dict:
    torch.manual_seed(4)
    payloads, train_sets = [], []
    for t in range(2):
        for split, n, seed in (("train", N_TRAIN, 30 + t), ("valid", N_VALID, 40 + t)):
            X, Y = _separable(n, seed, 0.25 * t)
            dataset = RecordingMmtlDataset({"data": X}, {f"labelset{t}": Y + 1})
            if split == "train":
                train_sets.append(dataset)
            payloads.append(
                Payload(
                    f"payload{t}_{split}",
                    MmtlDataLoader(dataset, batch_size=16, shuffle=split == "train"),
                    {f"labelset{t}": f"task{t}"},
                    split,
                )
            )
    tasks = [
        ClassificationTask(
            f"task{t}",
            input_module=nn.Sequential(nn.Linear(2, 16), nn.ReLU()),
            head_module=nn.Linear(16, 2),
        )
        for t in range(2)
    ]
    model = MetalModel(tasks, verbose=False)
    ckpt = os.path.join(out_dir, f"v05_ckpt_r{rank}")
    metrics = MultitaskTrainer(
        verbose=True,
        lr=0.02,
        n_epochs=4,
        seed=5 + rank,  # different seeds per rank: the run shares rank 0's
        checkpoint=True,
        checkpoint_cleanup=False,
        checkpoint_config={
            "checkpoint_best": True,
            "checkpoint_metric": "task0/payload0_valid/labelset0/accuracy",
            "checkpoint_metric_mode": "max",
            "checkpoint_dir": ckpt,
        },
        writer="json",
        writer_config={
            "log_dir": os.path.join(out_dir, f"v05_logs_r{rank}"),
            "run_dir": "runs",
            "run_name": "run",
        },
        metrics_config={"test_split": "valid"},
    ).train_model(model, payloads)
    accuracy = min(v for k, v in metrics.items() if k.endswith("/accuracy"))
    seen = {f"task{t}": ds.seen for t, ds in enumerate(train_sets)}
    return _scenario_result(
        "v05",
        out_dir,
        rank,
        model,
        seen,
        accuracy,
        os.path.join(ckpt, "best_model.pth"),
    )


def main() -> None:
    out_dir = sys.argv[1]
    backend = sys.argv[2] if len(sys.argv) > 2 else "gloo"
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        DEVICE["device"] = "cuda"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    # Each rank's printing goes to its own file (only rank 0 should print).
    sys.stdout = open(os.path.join(out_dir, f"stdout_r{rank}.txt"), "w")
    _capture_engine()
    results = {"world_size": dist.get_world_size()}
    for name, scenario in (
        ("gradient_average", gradient_average),
        ("end_model_tuples", end_model_on_tuples),
        ("end_model_loader", end_model_on_loader),
        ("trainer", mmtl_trainer),
        ("multitask_trainer", multitask_trainer),
    ):
        results[name] = scenario(out_dir, rank)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()
    sys.stdout.close()


if __name__ == "__main__":
    main()
