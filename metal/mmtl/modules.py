"""Modules for v0.5-style tasks, whose stages pass dicts along.

A stage's input and output is a dict whose ``"data"`` entry holds the tensor
(other entries, such as ``"uids"``, ride along). ``MetalModule`` marks modules
that already work on such dicts; any other module is wrapped in a
``MetalModuleWrapper`` by the task that uses it.
"""

from typing import Any, Dict

import torch.nn as nn

__all__ = ["MetalModule", "MetalModuleWrapper"]


class MetalModule(nn.Module):
    """Base class of modules that consume and produce v0.5 stage dicts (or
    whatever the next stage expects); tasks use them unwrapped."""

    def __init__(self) -> None:
        super().__init__()


class MetalModuleWrapper(nn.Module):
    """Adapts a tensor → tensor ``module`` to stage dicts.

    ``forward(X)`` returns a new dict equal to ``X`` except that ``"data"`` is
    ``module(X["data"])`` (the input dict is never modified, so cached outputs
    of earlier stages stay intact).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, X: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(X)
        out["data"] = self.module(X["data"])
        return out
