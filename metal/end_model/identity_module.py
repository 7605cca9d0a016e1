"""A parameter-free module that returns its input."""

from typing import Any

import torch.nn as nn


class IdentityModule(nn.Module):
    """``forward(x) -> x``; the default input module of an ``EndModel``."""

    def forward(self, x: Any) -> Any:
        return x

    def reset_parameters(self) -> None:
        """Nothing to reset."""
