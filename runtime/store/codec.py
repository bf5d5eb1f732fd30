"""Frozen dataclasses ↔ JSON-ready data, driven by their type hints, for the record stores.

Handles nested dataclasses, enums (by name), tuples, dicts, and `X | None`; anything else must
already be JSON-ready. Unknown keys in stored data are an error: a record written by a newer
pycrid is refused rather than half-read. So is data of the wrong JSON type (a string where a number
or an object belongs): a damaged record fails here, at load, not later in whatever reads the field.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")


@overload
def encode(value: DataclassInstance) -> dict[str, Any]: ...
@overload
def encode(value: Any) -> Any: ...


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(cls: type[T], data: Any) -> T:
    return typing.cast(T, _decode(cls, data))


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their types, resolved once per class: get_type_hints compiles and
    evaluates every annotation string (this module's users have ``from __future__ import
    annotations``) each time it is called, ~1 ms for a record of twenty fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _expect(data: Any, kinds: tuple[type, ...], hint: Any) -> None:
    # bool is an int to isinstance, never to a record: true is not a pid.
    if not isinstance(data, kinds) or (isinstance(data, bool) and bool not in kinds):
        raise ValueError(f"expected {getattr(hint, '__name__', hint)}, got {type(data).__name__} {data!r:.40}")


# What JSON gives for each scalar hint (a float field may hold a whole number).
_SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), int: (int,), bool: (bool,), float: (float, int)}


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if data is None else _decode(options[0], data)
    if origin is tuple:
        _expect(data, (list, tuple), hint)
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_decode(item, v) for v in data)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        _expect(data, (Mapping,), hint)
        args = typing.get_args(hint)
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _decode(value_hint, v) for k, v in data.items()}
    if hint in _SCALARS:
        _expect(data, _SCALARS[hint], hint)
        return data
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint[data]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _expect(data, (Mapping,), hint)
        hints = field_types(hint)
        unknown = set(data) - hints.keys()
        if unknown:
            raise ValueError(f"{hint.__name__}: unknown fields {sorted(unknown)}")
        return hint(**{k: _decode(hints[k], v) for k, v in data.items()})
    return data
