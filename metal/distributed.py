"""Data-parallel training with ``torch.distributed``.

When the user has initialised a default process group with more than one
process (``torch.distributed.init_process_group``, usually under
``torchrun``), every front door of the training engine (``train_model`` of
EndModel, LogisticRegression and MTEndModel, the mmtl ``Trainer.fit`` and
``MultitaskTrainer.train_model``) trains data-parallel. Without a group
nothing here runs and training is exactly the single-process one.

The pieces, used by ``metal.run`` and ``metal.engine`` through one
``DataParallel`` object per run:

* **data**: ``DataParallel.shard`` gives each rank a disjoint shard of every
  training source: in-memory ``(X, Y)`` batches (``ShardedTensorBatches``) and
  DataLoaders, mmtl loaders included (rebuilt with a ``DistributedSampler``,
  keeping batch size, collate function and workers). Shards are padded to
  equal length (as ``DistributedSampler`` does) so that every rank takes the
  same number of steps, and are reshuffled every epoch from a seed rank 0
  draws from torch's RNG (``set_epoch``).
* **gradients**: the training step runs as the ``forward`` of a small module
  holding the model, wrapped in ``DistributedDataParallel``; its backward
  averages the gradients over the ranks. The model object the user holds
  stays the plain module.
* **agreement**: initial parameters and buffers, and the RNG states, are rank
  0's; logged losses are averaged over all ranks; validation and train
  metrics are computed by rank 0 and broadcast, so checkpoint, early-stopping
  and scheduler decisions agree; at the end every rank takes rank 0's weights
  (its restored best model).
* **side effects**: only rank 0 prints, writes run logs and checkpoints
  (``is_main_process``).
* **devices**: with the NCCL backend (or a CUDA device asked for), rank ``r``
  uses ``cuda:LOCAL_RANK`` (``torch.cuda.set_device``); with gloo, the CPU.
"""

import copy
import os
import random
from typing import Any, Iterator, List, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
)

from metal._data import TensorBatches, take_rows
from metal.utils import _resolve_device

__all__ = [
    "DataParallel",
    "ShardedTensorBatches",
    "all_gather_objects",
    "barrier",
    "broadcast_module_state",
    "broadcast_object",
    "data_parallel",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "rank_device",
    "shard_indices",
    "shard_loader",
    "shared_seed",
]


# ------------------------------------------------------------ the process group
def is_distributed() -> bool:
    """Whether a default process group of more than one process exists."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank in the default group (0 without a group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes in the default group (1 without a group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Whether this process prints, writes logs and saves checkpoints (rank 0,
    or the only process)."""
    return get_rank() == 0


def local_rank() -> int:
    """The rank on this machine: ``LOCAL_RANK`` (set by torchrun), else the
    global rank modulo the number of CUDA devices, else 0."""
    value = os.environ.get("LOCAL_RANK")
    if value is not None:
        try:
            return int(value)
        except ValueError:
            raise ValueError(
                f"LOCAL_RANK must be an integer; found {value!r}."
            ) from None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return get_rank() % count if count else 0


def rank_device(device: Any = "cpu") -> torch.device:
    """The device this rank trains on, given the model's ``device`` setting.

    Without a group it is ``device`` itself. In a group, a CUDA ``device`` or
    the NCCL backend means ``cuda:<local_rank>`` (made the current CUDA
    device), one device per rank; anything else stays as given (gloo on CPU).
    """
    device = _resolve_device(device)
    if not is_distributed():
        return device
    if device.type == "cuda" or dist.get_backend() == "nccl":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={str(device)!r} (or the NCCL backend) needs CUDA, which "
                "is not available; use the gloo backend and device='cpu'."
            )
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    return device


def barrier() -> None:
    """Wait for every rank (nothing without a group)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (any picklable value) on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_module_state(module: nn.Module, src: int = 0) -> None:
    """Overwrite every rank's parameters and buffers with rank ``src``'s, in
    place (nothing without a group)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=src)


def shared_seed() -> int:
    """A seed drawn from rank 0's torch RNG, the same on every rank (a fresh
    draw from this process's torch RNG without a group)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if is_main_process() else 0
    return int(broadcast_object(seed))


# -------------------------------------------------------------------- sharding
def shard_indices(
    n: int,
    epoch: int,
    seed: int,
    shuffle: bool = True,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> torch.Tensor:
    """The item indices of ``rank``'s shard of ``n`` items in ``epoch``.

    With ``shuffle`` the items are permuted by a generator seeded with ``seed
    + epoch`` (the same permutation on every rank); the order is padded by
    wrapping around to a multiple of ``world_size`` and rank ``r`` takes
    positions ``r, r + world_size, ...``. The shards are disjoint apart from
    the padding and together cover all items.
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"rank must be in [0, world_size); found rank={rank}, "
            f"world_size={world_size}."
        )
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    per_rank = -(-n // world_size) if n else 0
    padding = per_rank * world_size - n
    if padding:
        repeats = -(-padding // n)
        order = torch.cat([order, order.repeat(repeats)[:padding]])
    return order[rank::world_size]


class ShardedTensorBatches:
    """This rank's shard of a ``TensorBatches``: the same batch size, shuffle
    and ``drop_last``, over ``shard_indices`` of its items, reshuffled every
    epoch (``set_epoch``) from ``seed``.

    Every rank has the same number of batches per epoch.
    """

    def __init__(self, batches: TensorBatches, seed: int) -> None:
        if not isinstance(batches, TensorBatches):
            raise ValueError(
                f"batches must be a TensorBatches; found {type(batches).__name__}."
            )
        self.base = batches
        self.seed = seed
        self.epoch = 0
        self.batch_size = batches.batch_size
        self.drop_last = batches.drop_last
        self.shuffle = batches.shuffle
        self.n = -(-batches.n // get_world_size())

    def set_epoch(self, epoch: int) -> None:
        """Use the shard (and order) of ``epoch``."""
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        """The item indices of this epoch's shard, in batch order."""
        return shard_indices(self.base.n, self.epoch, self.seed, self.shuffle)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator:
        index = self.indices()
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, len(index)), self.batch_size):
            yield take_rows(self.base.data, index[start : start + self.batch_size])


def shard_loader(loader: DataLoader, seed: int) -> DataLoader:
    """``loader`` rebuilt to read this rank's shard of its dataset: a
    ``DistributedSampler`` (shuffling as ``loader`` did, from ``seed``) with
    the same batch size, collate function, workers, memory pinning,
    ``drop_last`` and worker settings. Attributes of the loader that the
    DataLoader constructor does not know (e.g. mmtl's) are copied over.

    Raises:
        ValueError: for a loader over an ``IterableDataset`` or with its own
            batch sampler (no per-item sampler to shard).
    """
    if not isinstance(loader, DataLoader):
        raise ValueError(f"loader must be a DataLoader; found {type(loader).__name__}.")
    if isinstance(loader.dataset, IterableDataset):
        raise ValueError(
            "loader iterates an IterableDataset, which cannot be sharded by "
            "index; shard it yourself (e.g. by get_rank()) and pass a map-style "
            "Dataset, or train in one process."
        )
    if loader.batch_size is None:
        raise ValueError(
            "loader has its own batch_sampler, which cannot be sharded; give it a "
            "batch_size instead, or train in one process."
        )
    shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=get_world_size(),
        rank=get_rank(),
        shuffle=shuffle,
        seed=seed,
        drop_last=False,
    )
    workers = loader.num_workers
    sharded = DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=loader.persistent_workers if workers else False,
    )
    for name, value in vars(loader).items():
        if not name.startswith("_") and name not in vars(sharded):
            setattr(sharded, name, value)
    return sharded


def _sampler_of(source: Any) -> Any:
    sampler = getattr(source, "sampler", None)
    return sampler if isinstance(sampler, DistributedSampler) else None


# ------------------------------------------------------------ the run's context
class _StepModule(nn.Module):
    """The model with a training step as its ``forward``, so that
    ``DistributedDataParallel`` sees the step's forward pass (a step may call
    any of the model's methods, e.g. a multi-task model's own loss)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.step: Any = None

    def forward(self, batch: Any) -> Any:
        return self.step(batch)


class DataParallel:
    """One training run's data-parallel context (build it with
    ``data_parallel()``, which gives None without a process group).

    Args:
        find_unused_parameters: passed to ``DistributedDataParallel``; True
            for models whose steps may leave parameters without gradients
            (multi-task heads of tasks absent from a batch).

    Attributes: ``rank``, ``world_size``, ``is_main``.
    """

    def __init__(self, find_unused_parameters: bool = False) -> None:
        if not is_distributed():
            raise ValueError(
                "DataParallel needs a default process group of more than one "
                "process (torch.distributed.init_process_group)."
            )
        self.rank = get_rank()
        self.world_size = get_world_size()
        self.is_main = self.rank == 0
        self.find_unused_parameters = bool(find_unused_parameters)
        self._sources: List[Any] = []
        self._seed: Optional[int] = None
        self._ddp: Optional[DistributedDataParallel] = None

    # -------------------------------------------------------------- devices
    def device(self, device: Any) -> torch.device:
        """This rank's device for the model's ``device`` setting (see
        ``rank_device``)."""
        return rank_device(device)

    # ----------------------------------------------------------------- data
    @property
    def seed(self) -> int:
        """The run's shuffling seed (drawn by rank 0 at the first use)."""
        if self._seed is None:
            self._seed = shared_seed()
        return self._seed

    def shard(self, source: Any) -> Any:
        """This rank's shard of a training source: ``TensorBatches`` and
        DataLoaders are sharded (and reshuffled by ``set_epoch``).

        Raises:
            ValueError: for any other kind of source (it cannot be split), or
                a loader that cannot be sharded (see ``shard_loader``).
        """
        # Each source of the run has its own order (seeds seed, seed + 1, ...).
        seed = self.seed + len(self._sources)
        if isinstance(source, TensorBatches):
            sharded: Any = ShardedTensorBatches(source, seed)
        elif isinstance(source, DataLoader):
            sharded = shard_loader(source, seed)
        else:
            raise ValueError(
                "train_data must be an (X, Y) pair, a Dataset or a DataLoader to "
                f"train data-parallel; found {type(source).__name__}."
            )
        self._sources.append(sharded)
        return sharded

    def shard_payload(self, payload: Any) -> Any:
        """A copy of an mmtl ``Payload`` reading this rank's shard."""
        sharded = copy.copy(payload)
        sharded.data_loader = self.shard(payload.data_loader)
        return sharded

    def set_epoch(self, epoch: int) -> None:
        """Give every shard the order of ``epoch``."""
        for source in self._sources:
            target = _sampler_of(source) or source
            target.set_epoch(epoch)

    # ---------------------------------------------------------------- model
    def start(self, model: nn.Module, step: Any, device: torch.device) -> Any:
        """Make every rank start from rank 0's RNG states and weights and
        return ``step`` run through ``DistributedDataParallel`` (its backward
        averages the gradients over the ranks)."""
        self._share_rng_states()
        holder = _StepModule(model)
        device_ids = [device.index] if device.type == "cuda" else None
        # Constructing DDP broadcasts rank 0's parameters and buffers.
        self._ddp = DistributedDataParallel(
            holder,
            device_ids=device_ids,
            find_unused_parameters=self.find_unused_parameters,
        )
        holder.step = step
        return self._ddp

    def zero_loss(self, model: nn.Module) -> torch.Tensor:
        """A loss of 0 touching every trainable parameter: a rank whose batch
        has no labels still joins the gradient all-reduce."""
        return sum(
            (p.sum() * 0.0 for p in model.parameters() if p.requires_grad),
            torch.zeros((), device=next(model.parameters()).device),
        )

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (decisions taken by the clock)."""
        return bool(broadcast_object(bool(flag)))

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        return broadcast_object(value)

    def gather(self, value: Any) -> List[Any]:
        """Every rank's ``value``, in rank order."""
        return all_gather_objects(value)

    def finish(self, model: nn.Module, result: Any) -> None:
        """Give every rank rank 0's final weights (its best model, when one
        was restored) and rank 0's best-model facts in ``result``."""
        self._ddp = None
        broadcast_module_state(model)
        names = ("best_iteration", "best_score", "best_restored")
        facts = self.from_main({name: getattr(result, name) for name in names})
        for name, value in facts.items():
            setattr(result, name, value)

    def _share_rng_states(self) -> None:
        python_state, numpy_state, torch_state = self.from_main(_rng_states())
        _set_rng_states(python_state, numpy_state, torch_state)


def _rng_states():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_states(python_state, numpy_state, torch_state) -> None:
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)


def data_parallel(find_unused_parameters: bool = False) -> Optional[DataParallel]:
    """A ``DataParallel`` for a new run when a process group of more than one
    process exists, else None (single-process training)."""
    if not is_distributed():
        return None
    return DataParallel(find_unused_parameters)
