"""Token sequences -> padded id tensors for embedding-based models such as
``LSTMModule`` with an ``EmbeddingsEncoder``.

Ids: 0 is ``<unk>`` (unknown tokens) and is also the padding value of
``transform``; then the special tokens (``markers`` and ``"<pad>"``); then the
corpus tokens, most frequent first.
"""

import os
from collections import Counter
from typing import Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from metal._checks import check_int
from metal.contrib.featurizers.featurizer import Featurizer

UNK = "<unk>"
PAD = "<pad>"


class _UnknownIsZero(dict):
    """A ``str -> id`` dict whose missing keys map to 0 (``<unk>``) without
    being inserted."""

    def __missing__(self, key) -> int:
        return 0


class Vocab(object):
    """A token vocabulary: ``itos`` (id -> token) and ``stoi`` (token -> id,
    unknown tokens -> 0).

    Order: ``<unk>``, the ``specials`` (in order, without duplicates), then the
    counted tokens by descending count, ties alphabetical.

    Args:
        counter: token counts (a ``collections.Counter`` or any mapping).
        max_size: keep at most this many corpus tokens (specials not counted);
            None keeps all.
        min_freq: drop corpus tokens counted fewer times (values below 1 act
            as 1).
        specials: extra tokens placed right after ``<unk>``.

    Raises:
        ValueError: for a negative ``max_size`` or a non-integer ``min_freq``.
    """

    def __init__(
        self,
        counter,
        max_size: Optional[int] = None,
        min_freq: int = 1,
        specials: Sequence[str] = (PAD,),
    ):
        check_int(max_size, "max_size", minimum=0, allow_none=True)
        check_int(min_freq, "min_freq")
        self.freqs = Counter(counter)
        self.itos: List[str] = []
        for token in [UNK, *specials]:
            if token not in self.itos:
                self.itos.append(token)
        reserved = set(self.itos)
        ranked = sorted(
            (item for item in self.freqs.items() if item[0] not in reserved),
            key=lambda item: (-item[1], item[0]),
        )
        ranked = [token for token, count in ranked if count >= max(min_freq, 1)]
        if max_size is not None:
            ranked = ranked[:max_size]
        self.itos.extend(ranked)
        self.stoi = _UnknownIsZero((token, i) for i, token in enumerate(self.itos))

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"


class EmbeddingFeaturizer(Featurizer):
    """Maps tokenised sentences to right-padded id tensors.

    Subclasses decide how the vocabulary is built (``build_vocab``).

    Args:
        markers: special tokens (e.g. entity markers) that get their own ids
            right after ``<unk>``, followed by ``"<pad>"``.
    """

    def __init__(self, markers: Sequence[str] = []):
        if isinstance(markers, str) or not all(isinstance(m, str) for m in markers):
            raise ValueError(f"markers must be a list of strings; found {markers!r}.")
        self.specials = list(markers) + [PAD]
        self.vocab: Optional[Vocab] = None

    def build_vocab(self, counter: Counter) -> Vocab:
        """Build the vocabulary from token counts (implemented by subclasses)."""
        raise NotImplementedError

    def fit(self, sents: Sequence[Sequence[str]], **kwargs) -> None:
        """Count the tokens of ``sents`` (a list of token lists) and build the
        vocabulary; ``kwargs`` go to ``build_vocab`` (e.g. ``max_size``,
        ``min_freq``)."""
        counter = Counter()
        for tokens in _check_sents(sents):
            counter.update(tokens)
        self.vocab = self.build_vocab(counter, **kwargs)

    def transform(self, sents: Sequence[Sequence[str]]) -> torch.Tensor:
        """Token ids ``[n, max_len]`` (int64), one row per sentence **in input
        order**, right-padded with 0; unknown tokens get id 0 (``<unk>``).

        ``max_len`` is the longest sentence's length (at least 1).
        """
        if self.vocab is None:
            raise ValueError(
                f"This {type(self).__name__} is not fitted yet; call fit (or "
                "fit_transform) with training sentences first."
            )
        sents = _check_sents(sents)
        stoi = self.vocab.stoi
        width = max([1] + [len(tokens) for tokens in sents])
        ids = torch.zeros((len(sents), width), dtype=torch.long)
        for row, tokens in enumerate(sents):
            if tokens:
                ids[row, : len(tokens)] = torch.tensor([stoi[t] for t in tokens])
        return ids


class TrainableEmbeddingFeaturizer(EmbeddingFeaturizer):
    """An ``EmbeddingFeaturizer`` whose vocabulary is learned from the corpus
    (for embeddings trained from scratch)."""

    def build_vocab(self, counter: Counter, **kwargs) -> Vocab:
        """``Vocab(counter, specials=self.specials, **kwargs)`` (``max_size``,
        ``min_freq``)."""
        return Vocab(counter, specials=self.specials, **kwargs)


def _check_sents(sents: Iterable) -> List[List[str]]:
    if isinstance(sents, (str, bytes)) or not hasattr(sents, "__iter__"):
        raise ValueError(
            "sents must be a list of token lists; found " f"{type(sents).__name__}."
        )
    checked = []
    for i, tokens in enumerate(sents):
        if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
            raise ValueError(
                f"sents must be a list of token lists; item {i} is a "
                f"{type(tokens).__name__} (split sentences into tokens first)."
            )
        for token in tokens:
            if not isinstance(token, str):
                raise ValueError(
                    f"sents must hold string tokens; item {i} contains "
                    f"{token!r} ({type(token).__name__})."
                )
        checked.append(list(tokens))
    return checked


def vectors_for_vocab(
    vocab: Vocab, word_vectors: Union[Mapping[str, Sequence[float]], str, os.PathLike]
) -> torch.Tensor:
    """A pretrained embedding table aligned with ``vocab``: ``[len(vocab), dim]``.

    Row ``i`` is the vector of ``vocab.itos[i]``, or zeros for tokens without
    one (``<unk>``, ``<pad>``, out-of-vocabulary words). Pass the result as
    ``EmbeddingsEncoder(dim, embeddings=...)``.

    Args:
        vocab: e.g. a fitted ``TrainableEmbeddingFeaturizer().vocab``.
        word_vectors: ``{word: vector}``, or the path of a text file with one
            ``word v_1 ... v_dim`` line per word (the GloVe format).

    Raises:
        ValueError: if no vector is given, vectors differ in length, or a file
            line is malformed.
    """
    if not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab; found {type(vocab).__name__}.")
    if isinstance(word_vectors, (str, os.PathLike)):
        word_vectors = _read_word_vectors(os.fspath(word_vectors), set(vocab.itos))
    if not isinstance(word_vectors, Mapping) or not word_vectors:
        raise ValueError(
            "word_vectors must be a non-empty {word: vector} mapping or a file path; "
            f"found {type(word_vectors).__name__}."
        )
    dims = {len(vector) for vector in word_vectors.values()}
    if len(dims) != 1 or 0 in dims:
        raise ValueError(
            f"word_vectors must all have the same non-zero length; found lengths "
            f"{sorted(dims)}."
        )
    table = np.zeros((len(vocab), dims.pop()), dtype=np.float32)
    for i, token in enumerate(vocab.itos):
        if token in word_vectors:
            table[i] = np.asarray(word_vectors[token], dtype=np.float32)
    return torch.from_numpy(table)


def _read_word_vectors(path: str, wanted: set) -> dict:
    if not os.path.isfile(path):
        raise ValueError(f"word_vectors file {path!r} does not exist.")
    vectors = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                if line.strip():
                    raise ValueError(
                        f"{path}:{line_no}: expected 'word v_1 ... v_dim'; found "
                        f"{line.strip()[:40]!r}."
                    )
                continue
            if parts[0] not in wanted:
                continue
            try:
                vectors[parts[0]] = [float(v) for v in parts[1:]]
            except ValueError:
                raise ValueError(
                    f"{path}:{line_no}: vector entries must be numbers; found "
                    f"{' '.join(parts[1:])[:40]!r}."
                ) from None
    if not vectors:
        raise ValueError(f"word_vectors file {path!r} has no word of the vocabulary.")
    return vectors
