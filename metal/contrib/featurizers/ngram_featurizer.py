"""Binary n-gram features of relation mentions (scikit-learn's CountVectorizer
over lightly normalised token sequences)."""

from typing import Callable, FrozenSet, List, Sequence, Tuple

import scipy.sparse as sparse
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from metal._checks import check_int, is_int
from metal.contrib.featurizers.featurizer import Featurizer
from metal.contrib.featurizers.porter_stemmer import PorterStemmer

Positions = List[Tuple[int, int]]


def english_stopwords() -> FrozenSet[str]:
    """NLTK's English stop words when nltk and its ``stopwords`` corpus are
    installed locally (nothing is downloaded), else scikit-learn's list."""
    try:
        from nltk.corpus import stopwords

        return frozenset(stopwords.words("english"))
    except (ImportError, LookupError, OSError):
        return frozenset(ENGLISH_STOP_WORDS)


class RelationNgramFeaturizer(Featurizer):
    """Featurizes ``RelationMention``s as binary bags of n-grams.

    Each mention's tokens go through, in order and each only if enabled:

    1. ``anonymize``: each entity's (inclusive) token span becomes the single
       token ``ENTITY_<i>`` (``i`` = the entity's index in the mention);
    2. ``trim_window``: keep only the tokens from ``trim_window`` before the
       first entity to ``trim_window`` after the last one (``None`` = keep all);
    3. ``lowercase``;
    4. ``drop_stopwords``: drop English stop words (compared lower-cased);
    5. ``stem``: the Porter stem of each token (lower-cased).

    The resulting strings are vectorised by
    ``CountVectorizer(ngram_range=ngram_range, binary=True,
    **vectorizer_kwargs)`` (so its defaults apply too: tokens of at least two
    word characters, lower-cased).

    Args:
        anonymize, trim_window, lowercase, drop_stopwords, stem: the steps
            above.
        ngram_range: ``(min_n, max_n)`` n-gram lengths.
        **vectorizer_kwargs: more ``CountVectorizer`` arguments (e.g.
            ``min_df``, ``max_features``).

    Raises:
        ValueError: for a negative ``trim_window`` or an invalid
            ``ngram_range``.
    """

    def __init__(
        self,
        anonymize: bool = True,
        trim_window: int = 5,
        lowercase: bool = True,
        drop_stopwords: bool = True,
        stem: bool = True,
        ngram_range: Tuple[int, int] = (1, 3),
        **vectorizer_kwargs,
    ):
        check_int(trim_window, "trim_window", minimum=0, allow_none=True)
        if (
            not isinstance(ngram_range, (tuple, list))
            or len(ngram_range) != 2
            or not all(is_int(v) for v in ngram_range)
            or not 1 <= ngram_range[0] <= ngram_range[1]
        ):
            raise ValueError(
                "ngram_range must be a pair (min_n, max_n) of integers with 1 <= "
                f"min_n <= max_n; found {ngram_range!r}."
            )
        self.anonymize = anonymize
        self.trim_window = trim_window
        self.lowercase = lowercase
        self.drop_stopwords = drop_stopwords
        self.stem = stem
        self.ngram_range = tuple(ngram_range)
        self.stopwords = english_stopwords() if drop_stopwords else frozenset()
        self.stemmer = PorterStemmer() if stem else None
        self.vectorizer = CountVectorizer(
            ngram_range=self.ngram_range, binary=True, **vectorizer_kwargs
        )

    # ------------------------------------------------------------ preprocessing
    def preprocess(self, mentions: Sequence) -> List[str]:
        """One space-joined string of normalised tokens per mention.

        Raises:
            ValueError: if ``mentions`` is not a non-empty sequence of objects
                with ``tokens`` and ``word_positions`` (e.g. ``RelationMention``).
        """
        if isinstance(mentions, (str, bytes)) or not hasattr(mentions, "__len__"):
            raise ValueError(
                "mentions must be a sequence of RelationMention objects; found "
                f"{type(mentions).__name__}."
            )
        if len(mentions) == 0:
            raise ValueError("mentions must contain at least one mention; found none.")
        return [" ".join(self._preprocess(mention)) for mention in mentions]

    def _preprocess(self, mention) -> List[str]:
        try:
            tokens = list(mention.tokens)
            positions = [tuple(p) for p in mention.word_positions]
        except (AttributeError, TypeError):
            raise ValueError(
                "each mention must have tokens and word_positions (e.g. a "
                f"RelationMention); found {type(mention).__name__}."
            ) from None
        _check_positions(positions, len(tokens), mention)
        if self.anonymize:
            tokens, positions = self._anonymize(tokens, positions)
        if self.trim_window is not None and positions:
            tokens, positions = self._trim(tokens, positions)
        if self.lowercase:
            tokens = self._lowercase(tokens)
        if self.drop_stopwords:
            tokens = self._drop_stopwords(tokens)
        if self.stem:
            tokens = self._stem(tokens)
        return tokens

    def _anonymize(
        self, tokens: List[str], word_positions: Positions
    ) -> Tuple[List[str], Positions]:
        """Replace entity ``i``'s token span by ``ENTITY_<i>``; return the new
        tokens and each entity's new (single-token) position."""
        order = sorted(range(len(word_positions)), key=lambda i: word_positions[i])
        out: List[str] = []
        new_positions: Positions = [(0, 0)] * len(word_positions)
        cursor = 0
        for i in order:
            start, end = word_positions[i]
            if start < cursor:
                raise ValueError(
                    "anonymize needs non-overlapping entity spans; found "
                    f"word_positions={list(word_positions)}."
                )
            out.extend(tokens[cursor:start])
            new_positions[i] = (len(out), len(out))
            out.append(f"ENTITY_{i}")
            cursor = end + 1
        out.extend(tokens[cursor:])
        return out, new_positions

    def _trim(
        self, tokens: List[str], word_positions: Positions
    ) -> Tuple[List[str], Positions]:
        """Keep ``trim_window`` tokens either side of the entities."""
        first = min(start for start, _ in word_positions)
        last = max(end for _, end in word_positions)
        lo = max(0, first - self.trim_window)
        hi = min(len(tokens), last + self.trim_window + 1)
        rebased = [(start - lo, end - lo) for start, end in word_positions]
        return tokens[lo:hi], rebased

    def _lowercase(self, tokens: List[str]) -> List[str]:
        return [token.lower() for token in tokens]

    def _drop_stopwords(self, tokens: List[str]) -> List[str]:
        return [token for token in tokens if token.lower() not in self.stopwords]

    def _stem(self, tokens: List[str]) -> List[str]:
        stem: Callable[[str], str] = self.stemmer.stem
        return [stem(token) for token in tokens]

    # ------------------------------------------------------------ vectorizing
    def get_feature_names(self) -> List[str]:
        """The n-gram of each feature column (after ``fit``)."""
        self._check_fitted()
        return [str(name) for name in self.vectorizer.get_feature_names_out()]

    def fit(self, input: Sequence) -> None:
        """Learn the n-gram vocabulary of the mentions ``input``."""
        self.vectorizer.fit(self.preprocess(input))

    def transform(self, input: Sequence) -> sparse.csr_matrix:
        """Binary n-gram matrix ``[n_mentions, n_features]`` (scipy CSR)."""
        self._check_fitted()
        return sparse.csr_matrix(self.vectorizer.transform(self.preprocess(input)))

    def fit_transform(self, input: Sequence) -> sparse.csr_matrix:
        """``fit`` and ``transform`` in one pass over ``input``."""
        return sparse.csr_matrix(self.vectorizer.fit_transform(self.preprocess(input)))

    def _check_fitted(self) -> None:
        if not hasattr(self.vectorizer, "vocabulary_"):
            raise NotFittedError(
                "This RelationNgramFeaturizer is not fitted yet; call fit (or "
                "fit_transform) with training mentions first."
            )


def _check_positions(positions: Positions, n_tokens: int, mention) -> None:
    for start, end in positions:
        if not (0 <= start <= end < n_tokens):
            raise ValueError(
                f"word_positions must be inclusive (start, end) token ranges within "
                f"0..{n_tokens - 1}; found {(start, end)} in {mention!r}."
            )
