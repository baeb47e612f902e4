"""YAML loading that remembers where every mapping, key and list item came from (1-based lines).

Strict loading must say *where* a transcript is wrong ("faq.yaml:14: unknown key ..."), and the
plain ``yaml.safe_load`` forgets positions. ``load`` builds the same values with ``LocatedDict`` and
``LocatedList`` (subclasses of dict and list, so every other piece of code reads them as usual) and
refuses duplicate keys, which PyYAML would otherwise let the last one win silently.
"""

from __future__ import annotations

from typing import Any

import yaml


class LocatedDict(dict):
    """A mapping with ``line`` (where it starts) and ``key_lines`` (where each key is)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LocatedList(list):
    """A list with ``line`` (where it starts) and ``item_lines`` (where each item starts)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


class DuplicateKeyError(yaml.YAMLError):
    pass


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)  # merge keys (<<: *anchor) as SafeLoader does
    out = LocatedDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise DuplicateKeyError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping "
                                    f"(first on line {out.key_lines[key]})")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    out = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load(text: str) -> Any:
    """Parse one YAML document; mappings and lists carry their lines."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def line_of(container: Any, key: Any = None) -> int:
    """The line of ``container[key]`` (or of the container itself); 0 when unknown."""
    if isinstance(container, LocatedDict | LocatedList):
        return container.line if key is None else container.line_of(key)
    return 0


def plain(value: Any) -> Any:
    """The same data as ordinary dicts and lists (for pickling, JSON and ``yaml.safe_dump``)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
