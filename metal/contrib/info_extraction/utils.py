"""Helpers for relation extraction inputs."""

from typing import Dict, List, Sequence, Tuple, Union

Span = Tuple[int, int]
Positions = Union[Sequence[Span], Dict[int, Sequence[Span]]]

STYLES = ("insert", "concatenate")


def mark_entities(
    tokens: Sequence[str],
    positions: Positions,
    markers: Sequence[str] = [],
    style: str = "insert",
) -> List[str]:
    """A copy of ``tokens`` with markers around each entity span.

    Args:
        tokens: the sentence's tokens.
        positions: inclusive token ranges ``(start, end)``: a list with one
            range per entity, or ``{entity_idx: [range, ...]}`` for entities
            mentioned several times.
        markers: ``2 * n_entities`` strings; entity ``i`` is wrapped in
            ``markers[2i]`` and ``markers[2i+1]``. Default ``[[BEGIN<i>]]`` and
            ``[[END<i>]]``.
        style: ``"insert"`` adds the markers as tokens of their own;
            ``"concatenate"`` glues them to the span's first and last tokens.

    Example: ``mark_entities(["The", "cat", "sat"], [(1, 1)])`` ->
    ``["The", "[[BEGIN0]]", "cat", "[[END0]]", "sat"]``.

    Raises:
        ValueError: for a ``positions`` that is neither a list nor a dict, a
            range outside the tokens, or the wrong number of markers.
        NotImplementedError: for an unknown ``style``.
    """
    if isinstance(positions, dict):
        spans = [(i, span) for i, ranges in positions.items() for span in ranges]
        n_entities = len(positions)
    elif isinstance(positions, (list, tuple)):
        spans = list(enumerate(positions))
        n_entities = len(positions)
    else:
        raise ValueError(
            "positions must be a list of (start, end) ranges or a dict {entity_idx: "
            f"[ranges]}}; found {type(positions).__name__}."
        )
    if markers:
        if len(markers) != 2 * n_entities:
            raise ValueError(
                f"markers must hold 2 * {n_entities} = {2 * n_entities} strings (a "
                f"begin and an end marker per entity); found {len(markers)}."
            )
    else:
        markers = [
            m for i in _entity_ids(positions) for m in (f"[[BEGIN{i}]]", f"[[END{i}]]")
        ]
    marker_of = {
        entity: (markers[2 * k], markers[2 * k + 1])
        for k, entity in enumerate(_entity_ids(positions))
    }
    if style not in STYLES:
        raise NotImplementedError(
            f"style must be one of {list(STYLES)}; found {style!r}."
        )
    tokens = list(tokens)
    before: Dict[int, List[str]] = {}
    after: Dict[int, List[str]] = {}
    checked = [(entity, _check_span(span, len(tokens))) for entity, span in spans]
    for entity, (start, end) in sorted(checked, key=lambda item: item[1]):
        begin_marker, end_marker = marker_of[entity]
        before.setdefault(start, []).append(begin_marker)
        after.setdefault(end, []).insert(0, end_marker)
    out: List[str] = []
    for j, token in enumerate(tokens):
        if style == "insert":
            out.extend(before.get(j, []))
            out.append(token)
            out.extend(after.get(j, []))
        else:
            out.append("".join(before.get(j, [])) + token + "".join(after.get(j, [])))
    return out


def _entity_ids(positions: Positions) -> List[int]:
    if isinstance(positions, dict):
        return list(positions)
    return list(range(len(positions)))


def _check_span(span, n_tokens: int) -> Span:
    try:
        start, end = (int(v) for v in span)
    except (TypeError, ValueError):
        raise ValueError(
            f"each position must be an inclusive (start, end) token range; found "
            f"{span!r}."
        ) from None
    if not 0 <= start <= end < n_tokens:
        raise ValueError(
            f"position {(start, end)} is outside the {n_tokens} tokens (ranges are "
            "inclusive and must satisfy 0 <= start <= end < len(tokens))."
        )
    return start, end
