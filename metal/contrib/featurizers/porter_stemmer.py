"""The Porter (1980) suffix-stripping stemmer, through NLTK.

M.F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980, as
published: NLTK's ``PorterStemmer`` in its ``ORIGINAL_ALGORITHM`` mode (pure
code, no data downloads). Snowball's "porter" stemmer is not used because its
step 1b only undoubles bb, dd, ff, gg, mm, nn, pp, rr and tt, where the paper
undoubles any final double consonant but l, s and z ("revved" -> "rev").

On top of the algorithm, words are lower-cased first and words of one or two
letters are returned unchanged ("is" stays "is").

NLTK is an optional extra (``pip install snorkel-metal[contrib]``); it is
imported when a stemmer is first needed, not when this module is imported.
"""

from functools import lru_cache

_MISSING_BACKEND = (
    "The Porter stemmer needs the nltk package; install it with "
    "`pip install snorkel-metal[contrib]` (or `pip install nltk`)."
)


@lru_cache(maxsize=None)
def _classic_porter():
    """NLTK's stemmer in the mode that follows the 1980 paper (built once)."""
    try:
        from nltk.stem.porter import PorterStemmer as NltkPorterStemmer
    except ImportError as error:
        raise ImportError(_MISSING_BACKEND) from error
    return NltkPorterStemmer(mode=NltkPorterStemmer.ORIGINAL_ALGORITHM)


def _check_word(word) -> None:
    if not isinstance(word, str):
        raise ValueError(f"word must be a str; found {type(word).__name__}.")


# Token streams repeat words heavily; a hit costs well under a microsecond
# against tens of microseconds for the algorithm itself.
@lru_cache(maxsize=65536)
def _stem_lowercase(word: str) -> str:
    stemmer = _classic_porter()
    if len(word) <= 2:
        return word
    return stemmer.stem(word)


def porter_stem(word: str) -> str:
    """The Porter (1980) stem of ``word``, lower-cased.

    E.g. ``"relational"`` -> ``"relat"``, ``"Running"`` -> ``"run"``,
    ``"ponies"`` -> ``"poni"``; ``"is"`` -> ``"is"`` (one or two letters are
    kept as they are, after lower-casing).

    Raises:
        ValueError: if ``word`` is not a ``str``.
        ImportError: if nltk is not installed.
    """
    _check_word(word)
    return _stem_lowercase(word.lower())


class PorterStemmer:
    """``PorterStemmer().stem(word)``: the Porter (1980) stem of one token,
    as ``porter_stem``.

    Raises:
        ImportError: on construction, if nltk is not installed.
    """

    def __init__(self) -> None:
        _classic_porter()

    def stem(self, word: str) -> str:
        """The lower-cased Porter stem of ``word``; ``ValueError`` if it is
        not a ``str``."""
        return porter_stem(word)
