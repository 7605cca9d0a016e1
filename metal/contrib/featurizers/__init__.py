"""Featurizers: binary n-grams of relation mentions (scikit-learn) and padded
token-id tensors for embedding models."""

from metal.contrib.featurizers.embedding_featurizer import (
    EmbeddingFeaturizer,
    TrainableEmbeddingFeaturizer,
    Vocab,
    vectors_for_vocab,
)
from metal.contrib.featurizers.featurizer import Featurizer
from metal.contrib.featurizers.ngram_featurizer import RelationNgramFeaturizer

__all__ = [
    "EmbeddingFeaturizer",
    "Featurizer",
    "RelationNgramFeaturizer",
    "TrainableEmbeddingFeaturizer",
    "Vocab",
    "vectors_for_vocab",
]
