"""Entity/relation mentions and helpers for relation extraction (numpy only)."""

from metal.contrib.info_extraction.mentions import EntityMention, RelationMention
from metal.contrib.info_extraction.utils import mark_entities

__all__ = ["EntityMention", "RelationMention", "mark_entities"]
