"""A settings file read without pydantic, for the start-up path (issue #18).

Building the settings' pydantic TypeAdapter (with the pydantic modules it needs beyond the
core that app.py imports) cost ~90 ms before the window could appear. The settings are a few
frozen dataclasses of plain types, so this module turns parsed JSON into them directly, with
pydantic's strict rules for the types it knows: a string only for `str`, an integer (not a
bool, not a float) for `int`, an integer or a finite float for `float`, `true`/`false` for
`bool`, a JSON array for a tuple, an object of strings for a string mapping, a member's value
for a string enum, `null` for `| None`, unknown keys ignored, defaults for missing fields.

It only ever *accepts*: anything else — a wrong type, a missing required field, a type it does
not know — raises `Declined`, and the caller asks pydantic (the reference), which either reads
the file after all or names what is wrong with it. So a file this module accepts gives exactly
the settings pydantic gives (tests/core/test_settings_fast_path.py compares the two).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class Declined(Exception):
    """Not something this reader decides: ask pydantic."""


def read(cls: type[T], data: object) -> T:
    """`data` (from json.loads) as an instance of the dataclass `cls`, or Declined."""
    return _convert(cls, data)  # type: ignore[no-any-return]


def dump(value: object) -> object:
    """A dataclass of the types `read` knows as JSON data (what pydantic's
    `dump_python(..., mode="json")` gives for it): saving the settings needs no pydantic
    either, so a save on the GUI thread never waits for it to import."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [dump(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): dump(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"cannot write {type(value).__name__} as settings")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass(cls: type, data: object) -> object:
    if not isinstance(data, dict):
        raise Declined(cls.__name__)
    hints = _hints(cls)
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _convert(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise Declined(f"{cls.__name__}.{f.name} missing")
    return cls(**values)


def _convert(tp: Any, value: object) -> object:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        rest = [option for option in options if option is not type(None)]
        if len(rest) != 1:
            raise Declined(str(tp))
        return _convert(rest[0], value)
    if tp is str:
        if type(value) is str:
            return value
    elif tp is bool:
        if type(value) is bool:
            return value
    elif tp is int:
        if type(value) is int:
            return value
    elif tp is float:
        if type(value) is int or (type(value) is float and math.isfinite(value)):
            return float(value)  # type: ignore[arg-type]
    elif origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis and type(value) is list:
            return tuple(_convert(args[0], item) for item in value)
    elif origin in (dict, Mapping):
        args = typing.get_args(tp)
        if args == (str, str) and type(value) is dict and all(
                type(item) is str for item in value.values()):
            return dict(value)
    elif isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        if type(value) is str and value in tp._value2member_map_:
            return tp(value)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value)
    raise Declined(f"{tp!r} from {type(value).__name__}")
