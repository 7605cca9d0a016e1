"""Entity and relation mentions: spans of a tokenised document.

Character offsets are 0-based with exclusive ends (``text[char_start:char_end]``);
word positions are inclusive token indices ``(word_start, word_end)``.
"""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np


def _char_offsets(
    text: str, tokens: List[str], char_offsets: Optional[Sequence[int]]
) -> np.ndarray:
    """Start offset of each token, plus a final ``len(text)`` entry."""
    if char_offsets is not None:
        offsets = [int(o) for o in char_offsets]
        if len(offsets) != len(tokens):
            raise ValueError(
                f"char_offsets must give one start offset per token ({len(tokens)}); "
                f"found {len(offsets)}."
            )
    else:
        # Locate each token in the text; if a token is not found verbatim
        # (e.g. a normalised token), assume one space between tokens.
        offsets, cursor = [], 0
        for token in tokens:
            found = text.find(token, cursor)
            start = found if found >= 0 else cursor
            offsets.append(start)
            cursor = start + len(token) + (0 if found >= 0 else 1)
    return np.array(offsets + [len(text)], dtype=np.int64)


_RESERVED = frozenset(
    ["entity", "word_start", "word_end", "char_offsets", "char_start", "char_end"]
    + ["doc_id", "text", "tokens", "mention_id", "entities", "entity_positions"]
)


def _check_tokens(text: str, tokens) -> List[str]:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str; found {type(text).__name__}.")
    if tokens is None:
        return text.split()
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"tokens must be a list of strings; found {tokens!r}.")
    return list(tokens)


class EntityMention(object):
    """A span ``text[char_start:char_end]`` of a document.

    Args:
        doc_id: the document's id.
        text: the document (or sentence) text.
        char_start, char_end: the span's character offsets (end exclusive).
        tokens: the text's tokens (default: whitespace split).
        char_offsets: each token's start offset (default: found in ``text``;
            a copy is kept, with ``len(text)`` appended).
        mention_id: an id (default: the mention's hash).
        **attributes: per-token attributes (e.g. ``pos_tags=[...]``), stored
            as attributes of the mention.

    Attributes:
        entity: the span's text; ``word_start``/``word_end``: inclusive token
            indices of the span's first and last character.

    Raises:
        ValueError: for a span outside the text, non-string tokens or
            mismatched ``char_offsets``.
    """

    def __init__(
        self,
        doc_id: Any,
        text: str,
        char_start: int,
        char_end: int,
        tokens: Optional[List[str]] = None,
        char_offsets: Optional[Sequence[int]] = None,
        mention_id: Any = None,
        **attributes,
    ):
        tokens = _check_tokens(text, tokens)
        self.doc_id = doc_id
        self.text = text
        self.char_start = int(char_start)
        self.char_end = int(char_end)
        if not 0 <= self.char_start < self.char_end <= len(text):
            raise ValueError(
                f"char_start and char_end must satisfy 0 <= char_start < char_end <= "
                f"len(text)={len(text)}; found ({char_start}, {char_end})."
            )
        self.entity = text[self.char_start : self.char_end]
        self.tokens = tokens
        self.char_offsets = _char_offsets(text, tokens, char_offsets)
        # A span starting in whitespace before the first token starts at token 0.
        self.word_start = max(0, self.char_to_word_idx(self.char_start))
        self.word_end = self.char_to_word_idx(self.char_end - 1)
        for name, value in attributes.items():
            if name in _RESERVED:
                raise ValueError(
                    f"attribute {name!r} would overwrite a field of the mention; "
                    f"choose a name other than {sorted(_RESERVED)}."
                )
            setattr(self, name, value)
        self.mention_id = mention_id if mention_id is not None else hash(self)

    def _get_char_offsets(self, char_offsets: Optional[Sequence[int]]) -> np.ndarray:
        """Token start offsets plus ``len(text)`` (computed if not given)."""
        return _char_offsets(self.text, self.tokens, char_offsets)

    def word_to_char_idx(self, word_idx: int) -> int:
        """The start offset of token ``word_idx``."""
        return int(self.char_offsets[word_idx])

    def char_to_word_idx(self, char_offset: int) -> int:
        """The index of the token containing (or last starting before)
        ``char_offset``."""
        return int(np.searchsorted(self.char_offsets, char_offset, side="right")) - 1

    def get_entity_attrib(self, attrib: str) -> list:
        """The per-token attribute ``attrib`` over the span's tokens."""
        return getattr(self, attrib)[self.word_start : self.word_end + 1]

    @property
    def words(self) -> List[str]:
        return self.tokens

    def _key(self) -> Tuple:
        return (self.doc_id, self.char_start, self.char_end)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"EntityMention(doc_id={self.doc_id}: '{self.entity}'"
            f"({self.char_start}:{self.char_end})"
        )


class RelationMention(object):
    """Several entity spans of one document (e.g. the two arguments of a
    relation).

    Args:
        doc_id, text, tokens, char_offsets, **attributes: as for
            ``EntityMention`` (shared by all entities).
        entity_positions: one ``(char_start, char_end)`` per entity, in
            argument order.
        mention_id: an id (default: the mention's hash).

    Raises:
        ValueError: for no entities or malformed positions.
    """

    def __init__(
        self,
        doc_id: Any,
        text: str,
        entity_positions: Sequence[Tuple[int, int]],
        tokens: Optional[List[str]] = None,
        char_offsets: Optional[Sequence[int]] = None,
        mention_id: Any = None,
        **attributes,
    ):
        tokens = _check_tokens(text, tokens)
        try:
            positions = [(int(s), int(e)) for s, e in entity_positions]
        except (TypeError, ValueError):
            raise ValueError(
                "entity_positions must be a list of (char_start, char_end) pairs; "
                f"found {entity_positions!r}."
            ) from None
        if not positions:
            raise ValueError(
                "entity_positions must list at least one entity; found none."
            )
        offsets = _char_offsets(text, tokens, char_offsets)[:-1]
        self.doc_id = doc_id
        self.entity_positions = positions
        self.entities = [
            EntityMention(doc_id, text, s, e, tokens, offsets, **attributes)
            for s, e in positions
        ]
        self.mention_id = mention_id if mention_id is not None else hash(self)

    @property
    def text(self) -> str:
        return self.entities[0].text

    @property
    def tokens(self) -> List[str]:
        return self.entities[0].tokens

    @property
    def words(self) -> List[str]:
        return self.entities[0].tokens

    @property
    def word_starts(self) -> List[int]:
        return [e.word_start for e in self.entities]

    @property
    def word_ends(self) -> List[int]:
        return [e.word_end for e in self.entities]

    @property
    def word_positions(self) -> List[Tuple[int, int]]:
        """A fresh list of each entity's inclusive ``(word_start, word_end)``."""
        return [(e.word_start, e.word_end) for e in self.entities]

    def get_attr(self, attr: str) -> Any:
        """The document-level attribute ``attr`` (from the first entity)."""
        return getattr(self.entities[0], attr)

    def __getitem__(self, key: int) -> EntityMention:
        return self.entities[key]

    def _key(self) -> Tuple:
        return (self.doc_id, tuple(self.entity_positions))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        entities = ", ".join(
            f'"{e.entity}"({e.char_start}:{e.char_end})' for e in self.entities
        )
        return f"RelationMention(doc_id={self.doc_id}: entities=({entities})"
