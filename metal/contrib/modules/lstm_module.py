"""An LSTM input module for ``EndModel`` and the encoders that feed it.

Shapes: a batch of sequences is either token ids ``[batch, seq]`` (for an
``EmbeddingsEncoder``) or already-featurised vectors ``[batch, seq, feat]``
(for the plain ``Encoder``). Padding is trailing: id 0, or an all-zero vector.
``LSTMModule`` reduces each sequence to one vector ``[batch, output_dim]``.
"""

import os
from typing import Optional, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from metal._checks import check_choice, check_positive_int
from metal._io import safe_torch_load
from metal.utils import set_seed

LSTM_REDUCTIONS = ("mean", "max", "last", "attention")

PretrainedSource = Union[torch.Tensor, np.ndarray, str, os.PathLike]


class Encoder(nn.Module):
    """Passes already-featurised sequences through unchanged (as floats).

    Args:
        encoded_size: the feature width ``feat`` of each position.
        verbose: unused (kept for a uniform encoder signature).
    """

    def __init__(self, encoded_size: int, verbose: bool = True):
        super().__init__()
        self.encoded_size = check_positive_int(encoded_size, "encoded_size")
        self.verbose = verbose

    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """``[batch, seq, encoded_size]`` -> the same values as floats.

        Raises:
            ValueError: if ``X`` is not 3-D with last dimension ``encoded_size``.
        """
        if X.dim() != 3 or X.shape[-1] != self.encoded_size:
            raise ValueError(
                f"Encoder expects X of shape [batch, seq, {self.encoded_size}] "
                f"(encoded_size={self.encoded_size}); found {tuple(X.shape)}."
            )
        return X if X.is_floating_point() else X.float()


class EmbeddingsEncoder(Encoder):
    """Looks token ids up in an embedding table.

    Args:
        encoded_size: the embedding width.
        vocab_size: number of rows of a new, randomly initialised table (ids
            ``0..vocab_size-1``; id 0 is an ordinary row, used for padding).
        embeddings: pretrained vectors instead of a random table: a 2-D tensor
            or NumPy array ``[vocab_size, encoded_size]``, or the path of a file
            holding one (``.npy``; ``.pt``/``.pth`` with a saved tensor, read
            with ``weights_only=True``; anything else is read as whitespace-
            separated text, one row per line).
        freeze: keep the table fixed during training.
        verbose: print which table is used.
        seed: seed Python, NumPy and torch before a random table is drawn.
        **kwargs: ignored (so tuners may pass every sampled key).

    Raises:
        ValueError: when neither or inconsistent ``vocab_size``/``embeddings``
            are given, or the table's width differs from ``encoded_size``.
    """

    def __init__(
        self,
        encoded_size: int,
        vocab_size: Optional[int] = None,
        embeddings: Optional[PretrainedSource] = None,
        freeze: bool = False,
        verbose: bool = True,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(encoded_size, verbose=verbose)
        if embeddings is None:
            if vocab_size is None:
                raise ValueError(
                    "EmbeddingsEncoder needs vocab_size (for a random table) or "
                    "embeddings (pretrained vectors); found neither."
                )
            vocab_size = check_positive_int(vocab_size, "vocab_size")
            if seed is not None:
                set_seed(seed)
            self.embeddings = nn.Embedding(vocab_size, self.encoded_size)
            source = "random"
        else:
            weights = self._load_pretrained(embeddings)
            if weights.shape[1] != self.encoded_size:
                raise ValueError(
                    f"embeddings have width {weights.shape[1]} but encoded_size="
                    f"{self.encoded_size}; they must be equal."
                )
            if vocab_size is not None and vocab_size != weights.shape[0]:
                raise ValueError(
                    f"embeddings have {weights.shape[0]} rows but vocab_size="
                    f"{vocab_size}; pass a matching vocab_size or leave it None."
                )
            self.embeddings = nn.Embedding(*weights.shape)
            with torch.no_grad():
                self.embeddings.weight.copy_(weights)
            source = "pretrained"
        self.embeddings.weight.requires_grad = not freeze
        self.freeze = bool(freeze)
        if verbose:
            state = "frozen" if freeze else "trainable"
            print(
                f"Using {source} embeddings of shape "
                f"{tuple(self.embeddings.weight.shape)} ({state})."
            )

    def _load_pretrained(self, pretrained: PretrainedSource) -> torch.Tensor:
        """The pretrained table as a float tensor ``[vocab_size, dim]``."""
        if isinstance(pretrained, (str, os.PathLike)):
            pretrained = _read_matrix_file(os.fspath(pretrained))
        if isinstance(pretrained, np.ndarray):
            if pretrained.dtype.kind not in "biuf":
                raise ValueError(
                    "embeddings must be numeric; found an array of dtype "
                    f"{pretrained.dtype}."
                )
            pretrained = torch.from_numpy(np.ascontiguousarray(pretrained))
        if not isinstance(pretrained, torch.Tensor):
            raise ValueError(
                "embeddings must be a 2-D tensor, a NumPy array or a file path; "
                f"found {type(pretrained).__name__}."
            )
        if pretrained.dim() != 2 or 0 in pretrained.shape:
            raise ValueError(
                "embeddings must be a non-empty 2-D [vocab_size, dim] table; found "
                f"shape {tuple(pretrained.shape)}."
            )
        return pretrained.detach().float()

    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """Token ids ``[batch, seq]`` -> vectors ``[batch, seq, encoded_size]``."""
        if X.dim() != 2:
            raise ValueError(
                "EmbeddingsEncoder expects token ids of shape [batch, seq]; found "
                f"{tuple(X.shape)}."
            )
        return self.embeddings(X.long())


def _read_matrix_file(path: str):
    if not os.path.isfile(path):
        raise ValueError(f"embeddings file {path!r} does not exist.")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(
                f"embeddings file {path!r} is damaged or is not a NumPy array file "
                f"({type(exc).__name__})."
            ) from None
    if suffix in (".pt", ".pth"):
        return safe_torch_load(path, "tensor file")
    try:
        return np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise ValueError(
            f"embeddings file {path!r} is not a whitespace-separated numeric "
            f"matrix ({exc})."
        ) from None


class CNNEncoder(nn.Module):
    """Placeholder for a convolutional encoder (not implemented)."""

    def encode(self, X):
        raise NotImplementedError("CNNEncoder is a placeholder; use Encoder.")


class LSTMModule(nn.Module):
    """Encode each sequence, run an LSTM over its real positions and reduce.

    Args:
        encoded_size: the encoder's output width per position.
        hidden_size: the LSTM's hidden width per direction.
        lstm_reduction: how the LSTM outputs of a sequence become one vector:
            ``"max"`` (element-wise max), ``"mean"``, ``"last"`` (output at the
            last real position) or ``"attention"`` (softmax-weighted sum with a
            learned scoring vector). Checked when ``forward`` runs.
        bidirectional: run the LSTM in both directions.
        verbose: print the reduction in use (and pass ``verbose`` on to the
            encoder).
        seed: seed Python, NumPy and torch before the parameters are drawn.
        lstm_num_layers: stacked LSTM layers.
        encoder_class: ``Encoder`` (features in) or ``EmbeddingsEncoder`` (token
            ids in), or any class with ``encoded_size`` and ``encode``.
        encoder_kwargs: keyword arguments of ``encoder_class`` (not modified).
        **kwargs: ignored (so tuners may pass every sampled key).

    Attributes:
        output_dim: ``2 * hidden_size`` if bidirectional else ``hidden_size``;
            the ``EndModel``'s ``layer_out_dims[0]`` must equal it.
    """

    def __init__(
        self,
        encoded_size: int,
        hidden_size: int,
        lstm_reduction: str = "max",
        bidirectional: bool = True,
        verbose: bool = True,
        seed: Optional[int] = None,
        lstm_num_layers: int = 1,
        encoder_class: type = Encoder,
        encoder_kwargs: dict = {},
        **kwargs,
    ):
        super().__init__()
        hidden_size = check_positive_int(hidden_size, "hidden_size")
        lstm_num_layers = check_positive_int(lstm_num_layers, "lstm_num_layers")
        if not isinstance(encoder_kwargs, dict):
            raise ValueError(
                f"encoder_kwargs must be a dict; found {type(encoder_kwargs).__name__}."
            )
        if seed is not None:
            set_seed(seed)
        self.lstm_reduction = lstm_reduction
        self.bidirectional = bool(bidirectional)
        self.hidden_size = hidden_size
        self.verbose = verbose
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.encoder = encoder_class(
            encoded_size, **{**encoder_kwargs, "verbose": verbose}
        )
        self.lstm = nn.LSTM(
            self.encoder.encoded_size,
            hidden_size,
            num_layers=lstm_num_layers,
            batch_first=True,
            bidirectional=self.bidirectional,
        )
        if lstm_reduction == "attention":
            self.attention_param = nn.Parameter(torch.empty(self.output_dim, 1))
            nn.init.xavier_normal_(self.attention_param)
        if verbose:
            print(f"Using LSTM reduction {lstm_reduction!r}.")

    def reset_parameters(self) -> None:
        """Nothing to do: the encoder and the LSTM reset themselves."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Sequences ``[batch, seq]`` (ids) or ``[batch, seq, feat]`` (vectors),
        right-padded with zeros -> ``[batch, output_dim]`` in the input order.

        A row's length is one past its last non-padding position (rows that are
        all padding count as length 1).
        """
        check_choice(self.lstm_reduction, LSTM_REDUCTIONS, "lstm_reduction")
        if not isinstance(X, torch.Tensor) or X.dim() not in (2, 3):
            raise ValueError(
                "LSTMModule expects a tensor of shape [batch, seq] or [batch, seq, "
                f"feat]; found {tuple(getattr(X, 'shape', ()))} "
                f"({type(X).__name__})."
            )
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"LSTMModule needs at least one sequence position; found X of shape "
                f"{tuple(X.shape)}."
            )
        lengths = _sequence_lengths(X)
        max_len = int(lengths.max())
        encoded = self.encoder.encode(X[:, :max_len])
        packed = pack_padded_sequence(
            encoded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, _ = self.lstm(packed)
        # pad_packed_sequence restores the input order of the rows.
        outputs, _ = pad_packed_sequence(
            outputs, batch_first=True, total_length=max_len
        )
        return self._reduce_output(outputs, lengths.to(outputs.device))

    def _reduce_output(
        self, outputs: torch.Tensor, seq_lengths: torch.Tensor
    ) -> torch.Tensor:
        """``[batch, seq, H]`` LSTM outputs -> ``[batch, H]`` over real positions."""
        positions = torch.arange(outputs.shape[1], device=outputs.device)
        real = positions[None, :] < seq_lengths[:, None]  # [batch, seq]
        if self.lstm_reduction == "max":
            masked = outputs.masked_fill(~real[:, :, None], float("-inf"))
            return masked.max(dim=1).values
        if self.lstm_reduction == "mean":
            summed = (outputs * real[:, :, None]).sum(dim=1)
            return summed / seq_lengths[:, None].to(outputs.dtype)
        if self.lstm_reduction == "last":
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            return outputs[rows, seq_lengths - 1]
        return self._attention(outputs, real)

    def _attention(
        self, output: torch.Tensor, real: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Softmax-weighted sum over positions of ``output [batch, seq, H]``
        (padding positions, where ``real`` is False, get weight 0)."""
        scores = (output @ self.attention_param).squeeze(-1)  # [batch, seq]
        if real is not None:
            scores = scores.masked_fill(~real, float("-inf"))
        weights = F.softmax(scores, dim=1)
        return (weights[:, :, None] * output).sum(dim=1)


def _sequence_lengths(X: torch.Tensor) -> torch.Tensor:
    """1 + the index of each row's last non-padding position (at least 1)."""
    nonzero = X != 0
    if X.dim() == 3:
        nonzero = nonzero.any(dim=2)
    positions = torch.arange(1, X.shape[1] + 1, device=X.device)
    lengths = (nonzero * positions[None, :]).max(dim=1).values
    return lengths.clamp(min=1).long()
