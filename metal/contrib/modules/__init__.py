"""Network modules for ``EndModel``: an LSTM with its encoders, a sparse
linear layer and a CIFAR-10 ResNet (torch only)."""

from metal.contrib.modules.lstm_module import EmbeddingsEncoder, Encoder, LSTMModule
from metal.contrib.modules.resnet_cifar10 import ResNetModule
from metal.contrib.modules.sparse_linear_module import SparseLinearModule

__all__ = [
    "EmbeddingsEncoder",
    "Encoder",
    "LSTMModule",
    "ResNetModule",
    "SparseLinearModule",
]
