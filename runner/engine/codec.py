"""Frozen dataclasses <-> JSON, and the JSON Schema of them: the machinery under ``results``.

The result types (``runner.engine.results``) are plain frozen dataclasses; this module walks their
type hints to write them (``encode``), to read and validate them (``decode``, one error naming the
path of the first bad value: ``cells[3].summary.throughput.mean: expected a number``) and to
describe them (``schema``). One walk of the hints for all three, so they cannot disagree.

Numbers that are not finite (an interval from one sample is infinitely wide) are written as
``null``, never as ``Infinity``/``NaN`` (not JSON). Read back, ``null`` in a field typed ``float``
is ``inf``; in a field typed ``float | None`` it stays ``None``.

Field options, through ``dataclasses.field(metadata=...)``: ``optional()`` -- the key is left out
when the value is None and may be missing when read; ``rest()`` -- a ``dict[str, Any]`` that takes
every key the type does not name (settings that differ per executor, keys of newer writers), and is
written back flat at the end; ``keyed(KEY)`` -- the JSON key differs from the field's name.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from typing import Any, Self

from workers.errors import InputError

_OPTIONAL, _REST, _KEY = "runner_optional", "runner_rest", "runner_key"
_NOT_FINITE = "null: not finite (e.g. the half-width of an interval from one sample)"


def optional() -> Any:
    """A field written only when it is not None, and that older or other documents may lack."""
    return dataclasses.field(default=None, metadata={_OPTIONAL: True})


def keyed(key: str, **options: Any) -> Any:
    """A field written under ``key`` in JSON, for keys that are Python keywords (``lambda``)."""
    return dataclasses.field(**options, metadata={_KEY: key})


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get(_KEY, f.name))


def rest() -> Any:
    """A ``dict[str, Any]`` field holding every key the type does not name, written back flat."""
    return dataclasses.field(default_factory=dict, metadata={_REST: True})


class Typed:
    """Base of the result types: ``to_json`` (plain JSON data) and ``from_json`` (validated, one
    InputError naming ``where`` and the path of the first bad value) for every one of them."""

    def to_json(self) -> dict[str, Any]:
        return dict(encode(self))

    @classmethod
    def from_json(cls, data: Any, where: str = "result") -> Self:
        try:
            value: Self = decode(cls, data)
        except DecodeError as exc:
            raise InputError(f"{where}: {exc}") from None
        return value


class DecodeError(ValueError):
    """A value of the wrong shape; ``path`` says where (``cells[3].summary``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'top level'}: {problem}")
        self.path = path


# --- writing ------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Plain JSON data (dicts, lists, str, finite numbers, bool, None) of ``value``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.metadata.get(_REST):
                extra = item
            elif item is not None or not f.metadata.get(_OPTIONAL):
                out[_key(f)] = encode(item)
        for key, item in extra.items():
            out.setdefault(key, encode(item))
        return out
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text of ``value``; never ``Infinity`` or ``NaN`` (``allow_nan=False`` proves it)."""
    return json.dumps(encode(value), indent=indent, allow_nan=False)


# --- reading ------------------------------------------------------------------------------------


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    """(True, X) for ``X | None``; (False, tp) otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def decode(tp: Any, data: Any, path: str = "") -> Any:
    """``data`` (parsed JSON) as an instance of type ``tp``; DecodeError at the first bad value."""
    nullable, inner = _is_optional(tp)
    if data is None and nullable:
        return None
    tp = inner
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(tp, data, path)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list or origin is tuple:
        if not isinstance(data, list):
            raise DecodeError(path, "expected a list")
        items = [decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(data, dict):
            raise DecodeError(path, "expected an object")
        return {k: decode(args[1], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    if tp is float:
        if data is None:
            return math.inf  # written for a number that was not finite
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DecodeError(path, "expected a number")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(path, "expected a whole number")
        return data
    if tp is bool or tp is str:
        if not isinstance(data, tp):
            raise DecodeError(path, "expected " + ("true or false" if tp is bool else "text"))
        return data
    raise TypeError(f"codec: unsupported type {tp!r} at {path}")  # a bug in a result type, not bad input


def _decode_dataclass(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(path, "expected an object")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    rest_field = None
    for f in dataclasses.fields(cls):
        if f.metadata.get(_REST):
            rest_field = f.name
            continue
        key = _key(f)
        where = f"{path}.{key}" if path else key
        if key in data:
            values[f.name] = decode(hints[f.name], data[key], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(where, "missing")
    if rest_field is not None:
        named = {_key(f) for f in dataclasses.fields(cls)}
        values[rest_field] = {k: v for k, v in data.items() if k not in named}
    return cls(**values)


# --- describing ---------------------------------------------------------------------------------


def schema(tp: Any, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of type ``tp``; dataclasses go to ``$defs`` by name."""
    top = defs is None
    defs = {} if defs is None else defs
    nullable, inner = _is_optional(tp)
    if inner is float:
        out: dict[str, Any] = {"type": ["number", "null"]}
        if not nullable:
            out["description"] = _NOT_FINITE
        return out
    if inner is Any:
        out = {}
    elif dataclasses.is_dataclass(inner) and isinstance(inner, type):
        name = inner.__name__
        if name not in defs:
            defs[name] = {}  # placeholder first: types may refer to themselves
            defs[name] = _object_schema(inner, defs)
        out = {"$ref": f"#/$defs/{name}"}
    elif typing.get_origin(inner) in (list, tuple):
        out = {"type": "array", "items": schema(typing.get_args(inner)[0], defs)}
    elif typing.get_origin(inner) is dict:
        out = {"type": "object", "additionalProperties": schema(typing.get_args(inner)[1], defs)}
    else:
        out = {"type": {int: "integer", str: "string", bool: "boolean"}[inner]}
    if nullable:
        out = {"anyOf": [out, {"type": "null"}]}
    if top:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **out, "$defs": dict(sorted(defs.items()))}
    return out


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_ended = False
    for f in dataclasses.fields(cls):
        if f.metadata.get(_REST):
            open_ended = True
            continue
        properties[_key(f)] = schema(hints[f.name], defs)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(_key(f))
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    out["additionalProperties"] = open_ended
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc and not doc.startswith(cls.__name__ + "("):
        out["description"] = " ".join(doc.split())
    return out
