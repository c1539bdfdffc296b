"""Scalar converters of the wire: one JSON value into a ``Decimal``, int, bool, str or enum.

Each converter takes the lenient shapes AlphaPoint venues send (numeric strings, ints for
decimals, enum names in any spelling) and refuses the rest with a
:class:`~kiiex_async.errors.DecodeError`; enum members are looked up through a cached
:class:`_Members` table.  Part of :mod:`kiiex_async._wire`; the model structuring
(:mod:`kiiex_async._wire_structure`) reads fields through these.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from . import errors
from ._wire_json import _in_range, _int_in_range, encode, loads

_Fn = Callable[[Any], Any]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _to_decimal(value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return _in_range(value)
    if kind is int:
        return Decimal(_int_in_range(value))
    if kind is str:
        return _decimal_of_str(value)
    if kind is float:
        raise errors.DecodeError("expected an exact decimal, got a float (decode with _wire.loads)")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return _to_decimal(Decimal(value))
    raise errors.DecodeError(f"expected a decimal number, got {_kind(value)}")


def _decimal_of_str(value: str) -> Decimal:
    """A numeric str (AlphaPoint's decimals as text) as a finite, in-range ``Decimal``."""
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise errors.DecodeError("expected a decimal number, got a non-numeric str") from None
    return _in_range(result)


def _to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            return _int_in_range(int(value))
        except ValueError:
            pass
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise errors.DecodeError("expected an integer, got a non-numeric str") from None
    if isinstance(value, Decimal):
        if _in_range(value) == value.to_integral_value():
            return int(value)
        raise errors.DecodeError("expected an integer, got a fractional number")
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_in_range(int(value))
    raise errors.DecodeError(f"expected an integer, got {_kind(value)}")


def _to_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) is str:
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise errors.DecodeError("expected a bool, got a str that is not true/false")
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise errors.DecodeError(f"expected a bool, got {_kind(value)}")


def _to_str(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise errors.DecodeError(f"expected a str, got {_kind(value)}")


def _json_text(value: Any) -> str:
    """A field that holds JSON text: an object or list is re-encoded exactly."""
    if isinstance(value, Mapping | list):
        return encode(value)
    return _to_str(value)


def _optional_json_text(value: Any) -> str | None:
    """:func:`_json_text`, keeping ``null`` as ``None``."""
    return None if value is None else _json_text(value)


def _string_list(value: Any) -> tuple[str, ...]:
    """A list of strings, possibly sent as JSON text (``"[\\"0xabc\\"]"``) or one bare str."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        if not text.startswith("["):
            return (text,)
        value = loads(text)
    if not isinstance(value, list | tuple):
        raise errors.DecodeError(f"expected a list of str, got {_kind(value)}")
    return tuple(_to_str(item) for item in value)


def _norm(name: str) -> str:
    return name.replace("_", "").replace(" ", "").lower()


_ENUM_CACHE_LIMIT = 256
# Longest spelling kept: a name padded to megabytes is still read, but keeping it would let
# a hostile server pin _ENUM_CACHE_LIMIT times its largest answer, for the process's life.
_ENUM_TEXT_KEPT = 64


class _Members(dict[Any, enum.Enum]):
    """Every int value and every spelling seen so far -> member; a miss asks ``convert``.

    A hit is one C-level lookup: models read enum fields through ``__getitem__``.
    """

    __slots__ = ("convert",)

    def __init__(self) -> None:
        super().__init__()
        self.convert: _Fn = _SCALARS[Any]

    def __missing__(self, key: Any) -> enum.Enum:
        return self.convert(key)  # type: ignore[no-any-return]


# Per enum, its _Members.
_ENUM_MEMBERS: dict[type[enum.Enum], _Members] = {}


def _enum_converter(cls: type[enum.Enum]) -> _Fn:
    by_text: dict[str, enum.Enum] = {}
    for member in cls:
        by_text[_norm(member.name)] = member
        by_text[str(member.value)] = member
    known = _Members()
    known.update({member.value: member for member in cls})
    known.update(by_text)
    _ENUM_MEMBERS[cls] = known
    unknown = cls.__members__.get("UNKNOWN")
    name = cls.__name__

    def convert(value: Any) -> enum.Enum:
        kind = type(value)
        if kind is int:
            member = known.get(value)
        elif kind is str:
            member = known.get(value)
            if member is None:
                member = by_text.get(_norm(value))
                if (
                    member is not None
                    and len(known) < _ENUM_CACHE_LIMIT
                    and len(value) <= _ENUM_TEXT_KEPT
                ):
                    known[value] = member
        elif isinstance(value, cls):
            return value
        elif isinstance(value, Decimal | int) and not isinstance(value, bool):
            member = known.get(_to_int(value))
        else:
            raise errors.DecodeError(f"expected a {name} (int or name), got {_kind(value)}")
        if member is not None:
            return member
        if unknown is not None:
            return unknown
        raise errors.DecodeError(f"unknown {name} value {str(value)[:40]!r}")

    known.convert = convert
    return convert


class _DecimalOfInt(dict[int, Decimal]):
    """``Decimal(n)`` of the ints seen so far (.NET sends 0 and whole amounts as ints)."""

    def __missing__(self, key: int) -> Decimal:
        value = Decimal(_int_in_range(key))
        if len(self) < _INT_DECIMAL_LIMIT:
            self[key] = value
        return value


_INT_DECIMAL_LIMIT = 1024
_INT_DECIMAL = _DecimalOfInt()

_SCALARS: dict[Any, _Fn] = {
    Decimal: _to_decimal,
    int: _to_int,
    bool: _to_bool,
    str: _to_str,
    Any: lambda value: value,
}
