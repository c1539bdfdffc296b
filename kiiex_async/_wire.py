"""The wire format: JSON in and out, and the one cattrs converter that builds models.

Responses are read leniently, the way AlphaPoint venues actually answer:

* keys match fields case-insensitively with underscores ignored (``InstrumentId``,
  ``instrumentId`` and ``instrument_id`` all fill ``instrument_id``; ``OMSId`` fills
  ``oms_id``); unknown keys are ignored;
* ``Decimal`` fields take JSON numbers (decoded exactly by :func:`loads`), ints and numeric
  strings (``"0.0000000100000000000000000000"``); a ``float`` is refused, never rounded;
* a number outside the range of :data:`MAX_EXPONENT` (``NaN``, ``Infinity``,
  ``1e999999999999999999``, a ``Decimal`` of more than 101 integer digits) is refused:
  ``DecodeError``.  JSON integers in id and time fields are left to Python's own
  4,300-digit cap: they never enter arithmetic with money;
* ints take ints and numeric strings, bools take ``true``/``false`` (or the strings);
* enums take the int, a numeric string or the name in any spelling (``"FullyExecuted"``,
  ``"Pending2Fa"``); an unknown value becomes the enum's ``UNKNOWN`` member if it has one;
* a ``null`` string field becomes ``""``.

Requests are written by :func:`encode` (:func:`dumps` for a body; the pipeline's query
strings use it too): compact JSON whose decimals are exact plain numbers
(:func:`decimal_text`).

Speed, in plain code (no source is generated): each model class gets a field table built
once; each distinct key set a plan (which keys fill which ``__init__`` arguments, picked
in one C-level call); each pattern of value types within it the few conversions it
needs (a ``Decimal`` field given an int, an enum field given a name...), so an object
costs a handful of C-level passes, one call per value whose JSON type is not its
field's, and the model's own ``__init__``.  ``Decimal`` values are trusted to be finite
and in range: :func:`loads` never yields others.  A failing value is named
(``Class.field``) by the same pass: nothing is structured twice.

cattrs' own generated structuring functions (``cattrs.gen.make_dict_structure_fn``) were
measured for this and are slower than the whole of this path before any key matching:
they call a Python hook per field and build through ``__init__`` with keyword arguments.
The converter still dispatches containers (``list[Order]``, ``dict[str, Decimal]``) to
these functions through a hook factory.
"""

from __future__ import annotations

import decimal
import enum
import json
import operator
import re
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from json.encoder import encode_basestring_ascii
from types import NoneType, UnionType
from typing import Any, TypeVar

import attrs
import cattrs

from . import errors
from .models import (
    Deposit,
    DepositInfo,
    DepositTicket,
    L2Entry,
    L2Snapshot,
    Level1Summary,
    Order,
    Side,
    TickerBar,
    Withdraw,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

__all__ = [
    "MAX_EXPONENT",
    "api_error",
    "converter",
    "decimal_text",
    "dumps",
    "encode",
    "loads",
    "parse_l2_snapshot",
    "parse_level1_summary",
    "parse_ticker_history",
    "session_token",
    "structure",
    "structure_list",
]

T = TypeVar("T")
_Fn = Callable[[Any], Any]

# --------------------------------------------------------------------------- JSON


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


#: Largest adjusted exponent (and, negated, smallest) of a number the SDK accepts: far
#: beyond a .NET ``decimal`` (at most 7.9e28, at least 1e-28 apart from 0) or a ``long``
#: (9.2e18), and far below what would make ``Decimal`` arithmetic overflow to Infinity.
MAX_EXPONENT = 100
_MAX_DIGITS = 1000  # significant digits of one number; .NET decimals have at most 29
# Building a number in this context raises instead of overflowing, underflowing or
# rounding: the C-level check costs less than a Python hook per number.
_IN_RANGE = decimal.Context(
    prec=_MAX_DIGITS,
    Emax=MAX_EXPONENT,
    Emin=-MAX_EXPONENT,
    traps=[
        decimal.Overflow,
        decimal.Underflow,
        decimal.Subnormal,
        decimal.Inexact,
        decimal.Clamped,
        decimal.InvalidOperation,
    ],
)
_INT_LIMIT = 10 ** (MAX_EXPONENT + 1)
_DECODER = json.JSONDecoder(parse_float=_IN_RANGE.create_decimal, parse_constant=_reject_constant)
_OPENERS = (b"{", b"[")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def loads(body: bytes | str) -> Any:
    """Decode a JSON body; numbers with a fraction or exponent become exact ``Decimal``.

    Integers stay ``int``.  ``NaN``/``Infinity`` and numbers whose adjusted exponent is
    beyond ±:data:`MAX_EXPONENT` are refused.  Raises
    :class:`~kiiex_async.errors.DecodeError` for anything that is not JSON (an HTML error
    page, an empty body, garbage) and for such numbers; the message never quotes the body,
    except an HTML page's ``<title>``.
    """
    try:
        if isinstance(body, str):
            text = body
        else:
            raw = body if type(body) is bytes else bytes(body)
            # An object or array opened by an ASCII byte is UTF-8: json.detect_encoding
            # would say so too, only slower (it looks for BOMs and UTF-16/32 zero bytes).
            if raw[:1] in _OPENERS and raw[1:2] != b"\x00":
                text = raw.decode("utf-8", "surrogatepass")
            else:
                text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise errors.DecodeError(_not_json(body, exc)) from None
    except ArithmeticError:
        raise errors.DecodeError(_OUT_OF_RANGE) from None


_OUT_OF_RANGE = f"a number is out of range (beyond 1e{MAX_EXPONENT} or 1e-{MAX_EXPONENT})"


def _in_range(value: Decimal) -> Decimal:
    """``value`` if finite and within ±:data:`MAX_EXPONENT`, else :class:`DecodeError`."""
    if not value.is_finite():
        raise errors.DecodeError("expected a finite decimal number, got NaN or Infinity")
    if value and not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        raise errors.DecodeError(_OUT_OF_RANGE)
    return value


def _int_in_range(value: int) -> int:
    if -_INT_LIMIT < value < _INT_LIMIT:
        return value
    raise errors.DecodeError(_OUT_OF_RANGE)


def _not_json(body: bytes | str, exc: Exception) -> str:
    text = body if isinstance(body, str) else bytes(body[:4096]).decode("utf-8", "replace")
    stripped = text.strip()
    if not stripped:
        return "the response body is empty, not JSON"
    if stripped.startswith("<"):
        match = _TITLE.search(text)
        title = " ".join(match.group(1).split())[:80] if match else ""
        return "the response is an HTML page, not JSON" + (f" ({title!r})" if title else "")
    if isinstance(exc, json.JSONDecodeError):
        return f"the response is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return f"the response is not valid JSON: {exc}"


def decimal_text(value: Decimal) -> str:
    """The one way a ``Decimal`` is written in a request, JSON body or query string alike.

    Exact, plain (no exponent), no trailing zeros, ``-0`` as ``0``: ``Decimal("1E+3")`` ->
    ``1000``, ``Decimal("100.50")`` -> ``100.5``.  ``NaN``/``Infinity`` raise
    :class:`~kiiex_async.errors.InvalidInputError`.
    """
    if not value.is_finite():
        raise errors.InvalidInputError(f"{value} cannot be sent: pass a finite Decimal")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _encode(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(encode_basestring_ascii(value))
    elif kind is int:
        out.append(int.__repr__(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is Decimal:
        out.append(decimal_text(value))
    elif kind is not dict and isinstance(value, enum.Enum):
        _encode(value.value, out)
    elif kind is dict or isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise errors.InvalidInputError(
                    f"request keys must be str, got {type(key).__name__}"
                )
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring_ascii(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise errors.InvalidInputError(
            "a float cannot be sent (it is not exact): pass a Decimal or a str"
        )
    elif isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, str):
        out.append(encode_basestring_ascii(str(value)))
    else:
        raise errors.InvalidInputError(f"cannot send a {type(value).__name__} in a request")


def encode(value: Any) -> str:
    """One value as compact ASCII JSON text.

    ``Decimal`` becomes an exact JSON number (:func:`decimal_text`), enums their value;
    nested mappings, lists and tuples are fine.  A ``float``, ``NaN`` or an unsupported
    type raises :class:`~kiiex_async.errors.InvalidInputError`.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def dumps(payload: Mapping[str, Any]) -> bytes:
    """Encode a request body: :func:`encode` of the payload, as bytes."""
    return encode(payload).encode("ascii")


# ------------------------------------------------------------------ scalar converters


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _to_decimal(value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return _in_range(value)
    if kind is int:
        return Decimal(_int_in_range(value))
    if kind is str:
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise errors.DecodeError("expected a decimal number, got a non-numeric str") from None
        return _in_range(result)
    if kind is float:
        raise errors.DecodeError("expected an exact decimal, got a float (decode with _wire.loads)")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return _to_decimal(Decimal(value))
    raise errors.DecodeError(f"expected a decimal number, got {_kind(value)}")


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


def _members(cls: type[enum.Enum]) -> _Members:
    """The member lookup of an enum (its converter built first if need be)."""
    _structurer(cls)
    return _ENUM_MEMBERS[cls]


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
                if member is not None and len(known) < _ENUM_CACHE_LIMIT:
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


# ---------------------------------------------------------------- model field tables

# Wire keys that do not normalise to the field name (normalised key -> field name).
_ALIASES: dict[type, dict[str, str]] = {
    Order: {"instrument": "instrument_id", "account": "account_id"},
    Level1Summary: {"instrumentsymbol": "symbol"},
}
# Fields whose wire value needs more than their annotation says.
_FIELD_OVERRIDES: dict[tuple[type, str], _Fn] = {
    (DepositTicket, "deposit_info"): _json_text,
    (WithdrawTicket, "template_form"): _json_text,
    (DepositInfo, "deposit_info"): _string_list,
    **{
        (cls, name): _optional_json_text
        for cls, names in (
            (DepositTicket, ("comments", "attachments")),
            (WithdrawTicket, ("comments", "attachments", "audit_log")),
            (Deposit, ("deposit_info",)),
            (Withdraw, ("template_form", "withdraw_transaction_details")),
        )
        for name in names
    },
}
_KEY_CACHE_LIMIT = 1024
# Key sets planned per class, and value-type patterns per key set: a server sends only
# a handful of each.  Past a limit, plans and patterns are worked out per object.
_SHAPE_LIMIT = 64
_PATTERN_LIMIT = 64
_STRUCTURERS: dict[Any, _Fn] = {}
_FACTORY: type = type(attrs.Factory(list))
_UNSEEN: Any = object()


@attrs.frozen
class _Reader:
    """How one field reads a JSON value.

    ``takes``: the value types kept as they are; ``quick``: a C-level converter for some
    other types (a dict lookup: an int into a ``Decimal``, a name or an int into an enum
    member); ``convert``: any other value (it refuses what does not fit).
    """

    takes: frozenset[type]
    quick: Mapping[type, _Fn]
    convert: _Fn

    def step(self, kind: type) -> _Fn | None:
        """The conversion a value of type ``kind`` needs (``None``: none)."""
        if kind in self.takes:
            return None
        return self.quick.get(kind, self.convert)


def _reader(tp: Any) -> _Reader:
    """The :class:`_Reader` of one annotation."""
    if tp is Decimal:
        return _Reader(frozenset({Decimal}), {int: _INT_DECIMAL.__getitem__}, _to_decimal)
    if tp in _SCALARS:
        return _Reader(frozenset() if tp is Any else frozenset({tp}), {}, _SCALARS[tp])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        lookup = _members(tp).__getitem__
        return _Reader(frozenset({tp}), {int: lookup, str: lookup}, _structurer(tp))
    if isinstance(tp, type) and attrs.has(tp):
        return _Reader(frozenset({tp}), {}, _structurer(tp))
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = _reader(args[0] if args[1] is NoneType else args[1])
        convert = inner.convert

        def optional(value: Any) -> Any:
            return None if value is None else convert(value)

        return _Reader(inner.takes | {NoneType}, inner.quick, optional)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _reader(args[0])

        def sequence(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise errors.DecodeError(f"expected a list, got {_kind(value)}")
            return tuple(v if type(v) in item.takes else item.convert(v) for v in value)

        return _Reader(frozenset(), {}, sequence)
    return _Reader(frozenset(), {}, _fallback(tp))


@attrs.frozen
class _Field:
    """One ``__init__`` argument of a model: how it reads and how it is passed."""

    name: str  # the attribute, named in errors
    argument: str  # the ``__init__`` parameter
    reader: _Reader
    positional: bool
    default: Any  # attrs.NOTHING: required; an attrs Factory: left to __init__


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        override = _FIELD_OVERRIDES.get((cls, field.name))
        if override is None:
            reader = _reader(hints.get(field.name, Any))
        else:  # JSON text is kept as it came; a list of str is parsed out of it
            text = override in (_json_text, _optional_json_text)
            reader = _Reader(frozenset({str}) if text else frozenset(), {}, override)
        result.append(
            _Field(field.name, field.alias or field.name, reader, not field.kw_only, field.default)
        )
    return tuple(result)


def _picker(keys: list[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """Items ``keys`` of a mapping or a tuple, as a tuple, in one C-level call."""
    if len(keys) >= 2:
        return operator.itemgetter(*keys)
    if keys:
        key = keys[0]
        return lambda items: (items[key],)
    return lambda items: ()


class _Plan:
    """How to build one model from the objects of one key set (keys in that order).

    ``pick`` takes the ``__init__`` arguments out of an object, positional ones first
    (with the defaults of absent fields that come before present ones).  The types of
    those values select the conversions, once per type pattern: an object costs a few
    C-level passes plus one call per value whose JSON type is not its field's.
    """

    __slots__ = ("fields", "keywords", "missing", "model", "patterns", "pick")

    def __init__(self, model: _ModelReader, shape: tuple[Any, ...]) -> None:
        self.model = model
        fields = model.fields
        chosen: dict[int, tuple[int, bool]] = {}  # field -> (its key's position, alias?)
        for position, key in enumerate(shape):
            found = model.resolve(key)
            if found is not None:
                index, alias = found
                seen = chosen.get(index)
                # Two spellings of one key: the later wins, as in a dict, but a field's
                # own name beats an alias of it.
                if not (alias and seen is not None and not seen[1]):
                    chosen[index] = (position, alias)
        absent = [f.argument for i, f in enumerate(fields) if i not in chosen and _required(f)]
        self.missing = (
            f"{model.name}: missing required field(s) {', '.join(absent)}" if absent else None
        )
        row: list[int] = []  # per argument: its key's position, or width + its default's
        used: list[_Field | None] = []  # per argument: its field (None: a default)
        keywords: list[str] = []
        defaults: list[Any] = []
        open_ = True
        for index, field in enumerate(fields):
            where = chosen.get(index)
            if open_ and field.positional:
                if where is None and isinstance(field.default, _FACTORY):
                    open_ = False
                else:
                    if where is None:
                        where = (len(shape) + len(defaults), False)
                        defaults.append(field.default)
                    row.append(where[0])
                    used.append(None if index not in chosen else field)
                    continue
            if where is not None:
                keywords.append(field.argument)
                row.append(where[0])
                used.append(field)
        positional = len(row) - len(keywords)
        while positional and used[positional - 1] is None:  # __init__ supplies these
            positional -= 1
            del row[positional], used[positional]
            defaults.pop()
        self.pick: Callable[[Mapping[Any, Any]], tuple[Any, ...]]
        width = len(shape)  # row positions from here on are defaults
        keys = [shape[position] for position in row if position < width]
        by_key = _picker(keys)
        if defaults:  # read by key, then put the defaults in their places
            tail = tuple(defaults)
            present = iter(range(len(keys)))
            order = _picker([next(present) if at < width else at - width + len(keys) for at in row])
            self.pick = lambda data: order(by_key(data) + tail)
        else:
            self.pick = by_key
        self.fields = tuple(used)
        self.keywords = tuple(keywords)
        self.patterns: dict[tuple[type, ...], tuple[tuple[int, _Fn], ...]] = {}

    def steps(self, kinds: tuple[type, ...]) -> tuple[tuple[int, _Fn], ...]:
        """(argument index, conversion) for each value of type pattern ``kinds`` needing one."""
        steps = tuple(
            (index, step)
            for index, (field, kind) in enumerate(zip(self.fields, kinds, strict=True))
            if field is not None and (step := field.reader.step(kind)) is not None
        )
        if len(self.patterns) < _PATTERN_LIMIT:
            self.patterns[kinds] = steps
        return steps

    def where(self, index: int) -> str:
        field = self.fields[index]
        return f"{self.model.name}.{field.name if field is not None else '?'}"


def _required(field: _Field) -> bool:
    return field.default is attrs.NOTHING


class _ModelReader:
    """The structuring function of one attrs model (built once per class).

    Keys match fields case-insensitively with underscores ignored (plus
    :data:`_ALIASES`); each key set gets a :class:`_Plan`.  Plain code: no source is
    generated.
    """

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.fields = _fields(cls)
        table: dict[str, tuple[int, bool]] = {}  # normalised key -> (field, alias?)
        for index, field in enumerate(self.fields):
            table[_norm(field.name)] = (index, False)
        for alias, target in _ALIASES.get(cls, {}).items():
            table[alias] = (table[_norm(target)][0], True)
        self.table = table
        self.keys: dict[Any, tuple[int, bool] | None] = {}
        self.shapes: dict[tuple[Any, ...], _Plan] = {}

    def resolve(self, key: Any) -> tuple[int, bool] | None:
        """(field index, alias?) that wire key ``key`` fills, or ``None`` (ignored)."""
        found = self.keys.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self.table.get(_norm(key)) if isinstance(key, str) else None
            if len(self.keys) < _KEY_CACHE_LIMIT:
                self.keys[key] = found
        return found  # type: ignore[no-any-return]

    def __call__(self, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            if not isinstance(data, Mapping):
                raise errors.DecodeError(f"{self.name}: expected a JSON object, got {_kind(data)}")
        shape = tuple(data)
        plan = self.shapes.get(shape)
        if plan is None:
            plan = _Plan(self, shape)
            if len(self.shapes) < _SHAPE_LIMIT:
                self.shapes[shape] = plan
        if plan.missing is not None:
            raise errors.DecodeError(plan.missing)
        values: Any = plan.pick(data)
        kinds = tuple(map(type, values))
        steps = plan.patterns.get(kinds)
        if steps is None:
            steps = plan.steps(kinds)
        if steps:
            values = list(values)
            index = 0
            try:
                for index, convert in steps:
                    values[index] = convert(values[index])
            except errors.DecodeError as exc:
                raise errors.DecodeError(f"{plan.where(index)}: {exc}") from None
            except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
                raise errors.DecodeError(f"{plan.where(index)}: {type(exc).__name__}") from None
        if plan.keywords:
            split = len(values) - len(plan.keywords)
            keywords = dict(zip(plan.keywords, values[split:], strict=True))
            return self.cls(*values[:split], **keywords)
        return self.cls(*values)


def _withdraw_template(data: Any) -> Any:
    """``{"Template": "<json>"}`` -> WithdrawTemplate (type, field names, the JSON text)."""
    if not isinstance(data, Mapping):
        return data
    raw = next((v for k, v in data.items() if isinstance(k, str) and k.lower() == "template"), None)
    if raw is None:
        return data
    template = loads(raw) if isinstance(raw, str) else raw
    if not isinstance(template, Mapping):
        raise errors.DecodeError("WithdrawTemplate.template: expected a JSON object")
    template_type = ""
    fields: list[str] = []
    for key, value in template.items():
        if _norm(key) == "templatetype":
            template_type = _to_str(value)
        else:
            fields.append(key)
    text = raw if isinstance(raw, str) else _json_text(raw)
    return {"template_type": template_type, "fields": fields, "template": text}


def _withdraw_template_type(data: Any) -> Any:
    """``"Standard"`` (old venues) or an object (newer ones)."""
    return {"template_name": data} if isinstance(data, str) else data


_PREPARE: dict[type, _Fn] = {
    WithdrawTemplate: _withdraw_template,
    WithdrawTemplateType: _withdraw_template_type,
}


def _prepared(prepare: _Fn, inner: _Fn) -> _Fn:
    def structure_prepared(data: Any) -> Any:
        return inner(prepare(data))

    return structure_prepared


def _fallback(cls: Any) -> _Fn:
    def structure_other(data: Any) -> Any:
        try:
            return converter.structure(data, cls)
        except errors.DecodeError:
            raise
        except Exception as exc:
            raise errors.DecodeError(f"{cls}: {type(exc).__name__}") from None

    return structure_other


def _structurer(cls: Any) -> _Fn:
    """The cached one-argument structuring function of a type."""
    found = _STRUCTURERS.get(cls)
    if found is not None:
        return found
    function: _Fn
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        function = _enum_converter(cls)
    elif isinstance(cls, type) and attrs.has(cls):
        # Registered before it is built so that self-referencing models terminate.
        _STRUCTURERS[cls] = lambda data: _STRUCTURERS[cls](data)
        function = _ModelReader(cls)
        prepare = _PREPARE.get(cls)
        if prepare is not None:
            function = _prepared(prepare, function)
    elif cls in _SCALARS:
        function = _SCALARS[cls]
    else:
        function = _fallback(cls)
    _STRUCTURERS[cls] = function
    return function


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


#: The one converter.  ``converter.structure(data, SomeModel)`` applies the same policy as
#: :func:`structure`; it also handles containers (``list[Order]``, ``dict[str, Decimal]``).
converter = cattrs.Converter(detailed_validation=False)
for _scalar in (Decimal, int, bool, str):
    converter.register_structure_hook(_scalar, lambda value, tp: _SCALARS[tp](value))
converter.register_structure_hook_func(_is_enum, lambda value, tp: _structurer(tp)(value))
converter.register_structure_hook_factory(
    attrs.has, lambda cls: lambda value, _tp: _structurer(cls)(value)
)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` (a model, an enum, ``Decimal``, ``int``...) from decoded JSON.

    Raises :class:`~kiiex_async.errors.DecodeError` naming the class and field when a
    required field is missing or a value has the wrong type.
    """
    function = _STRUCTURERS.get(cls)
    if function is None:
        function = _structurer(cls)
    try:
        return function(data)  # type: ignore[no-any-return]
    except errors.DecodeError as exc:
        if isinstance(cls, type) and attrs.has(cls):
            raise
        raise errors.DecodeError(f"{getattr(cls, '__name__', cls)}: {exc}") from None


def structure_list(data: Any, cls: type[T]) -> list[T]:
    """Build a list of ``cls`` from a JSON array, or from JSON text holding one.

    Errors name the item's index as well as the class and field.
    """
    if isinstance(data, str | bytes):
        data = loads(data)
    if not isinstance(data, list | tuple):
        raise errors.DecodeError(f"expected a JSON array of {cls.__name__}, got {_kind(data)}")
    function = _STRUCTURERS.get(cls)
    if function is None:
        function = _structurer(cls)
    result: list[T] = []
    append = result.append
    try:
        for item in data:
            append(function(item))
    except errors.DecodeError as exc:
        raise errors.DecodeError(f"item {len(result)}: {exc}") from None
    return result


# ------------------------------------------------------------------- market data rows

_SUMMARY_COLUMNS = {
    # (last price, 24h change, 24h change %, 24h volume) column indexes
    "node": (2, 3, 4, 5),
    "python": (2, 4, 5, 3),
}


def _rows(rows: Any, what: str) -> list[Any]:
    if isinstance(rows, str | bytes):
        rows = loads(rows)
    if rows is None:
        return []
    if not isinstance(rows, list | tuple):
        raise errors.DecodeError(f"{what}: expected a JSON array of rows, got {_kind(rows)}")
    return list(rows)


def parse_level1_summary(rows: Any, *, columns: str = "node") -> list[Level1Summary]:
    """Parse ``GetLevel1SummaryMin`` rows (arrays of numbers or strings; objects too).

    ``columns="node"``: ``[id, symbol, last, 24hPxChange, 24hPxChangePercent, 24hVolume]``
    (notbank-node, the primary reading); ``columns="python"``:
    ``[id, symbol, last, 24hVolume, 24hPxChange, 24hPxChangePercent]`` (notbank-python).
    A row shorter than six columns fills the fields its columns reach and leaves the rest
    ``None``; its first column must be the instrument id, or the row is a
    :class:`~kiiex_async.errors.DecodeError` (KIIEX's guide shows ``[["text"]]``: the
    type of a row, not a row that could be read).
    """
    layout = _SUMMARY_COLUMNS.get(columns)
    if layout is None:
        raise errors.InvalidInputError(f"columns must be 'node' or 'python', not {columns!r}")
    last, change, percent, volume = layout
    result: list[Level1Summary] = []
    for index, row in enumerate(_rows(rows, "GetLevel1SummaryMin")):
        if isinstance(row, Mapping):
            result.append(structure(row, Level1Summary))
            continue
        if not isinstance(row, list | tuple) or not row:
            raise errors.DecodeError(
                f"GetLevel1SummaryMin row {index}: expected up to 6 columns starting with "
                f"the instrument id, got {_describe(row)}"
            )
        try:
            result.append(
                Level1Summary(
                    instrument_id=_to_int(row[0]),
                    symbol=_column(row, 1, _to_str),
                    last_traded_px=_column(row, last, _to_decimal),
                    rolling_24hr_px_change=_column(row, change, _to_decimal),
                    rolling_24hr_px_change_percent=_column(row, percent, _to_decimal),
                    rolling_24hr_volume=_column(row, volume, _to_decimal),
                )
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetLevel1SummaryMin row {index}: {exc}") from None
    return result


def _column(row: list[Any] | tuple[Any, ...], index: int, convert: Callable[[Any], T]) -> T | None:
    """Column ``index`` of a row converted, or ``None`` when the row is shorter or null."""
    value = row[index] if index < len(row) else None
    return None if value is None else convert(value)


def parse_ticker_history(rows: Any) -> list[TickerBar]:
    """Parse ``GetTickerHistory`` rows into bars (a JSON array, or JSON text of one).

    A row is ``[time ms, high, low, open, close, volume, inside bid, inside ask,
    instrument id, begin time ms]`` (AlphaPoint; ccxt reads the first six, notbank-node
    all ten); at least the first six columns are required, the rest are ``None`` when
    absent.
    """
    bars: list[TickerBar] = []
    for index, row in enumerate(_rows(rows, "GetTickerHistory")):
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise errors.DecodeError(
                f"GetTickerHistory row {index}: expected 6 to 10 columns, got {_describe(row)}"
            )
        try:
            bars.append(
                TickerBar(
                    time=_to_int(row[0]),
                    high=_to_decimal(row[1]),
                    low=_to_decimal(row[2]),
                    open=_to_decimal(row[3]),
                    close=_to_decimal(row[4]),
                    volume=_to_decimal(row[5]),
                    inside_bid=_column(row, 6, _to_decimal),
                    inside_ask=_column(row, 7, _to_decimal),
                    instrument_id=_column(row, 8, _to_int),
                    begin_time=_column(row, 9, _to_int),
                )
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetTickerHistory row {index}: {exc}") from None
    return bars


def _describe(row: Any) -> str:
    return f"{len(row)} columns" if isinstance(row, list | tuple) else _kind(row)


# Column indexes: (price, quantity, side, action time, last trade price, orders, update id)
_L2_LAYOUTS: dict[int, tuple[int, int, int, int, int, int | None, int | None]] = {
    # MDUpdateId, Accounts, ActionDateTime, ActionType, LastTradePrice, Orders, Price,
    # InstrumentId, Quantity, Side  (AlphaPoint standard)
    10: (6, 8, 9, 2, 4, 5, 0),
    # AccountId, ActionDateTime, ActionType, LastTradePrice, OrderId, Price, InstrumentId,
    # Quantity, Side  (current KIIEX pages: one row per order)
    9: (5, 7, 8, 1, 3, None, None),
}
_SIDE = _enum_converter(Side)


def parse_l2_snapshot(rows: Any, instrument_id: int) -> L2Snapshot:
    """Parse ``GetL2Snapshot`` rows into a book; the layout is detected by row length.

    Rows at the same price and side are merged into one level (the 9-column KIIEX layout
    has one row per order).  Rows with a zero quantity or price are dropped.  ``bids``
    come highest first, ``asks`` lowest first.
    """
    levels: dict[tuple[Side, Decimal], L2Entry] = {}
    for index, row in enumerate(_rows(rows, "GetL2Snapshot")):
        layout = _L2_LAYOUTS.get(len(row)) if isinstance(row, list | tuple) else None
        if layout is None:
            raise errors.DecodeError(
                f"GetL2Snapshot row {index}: expected 9 or 10 columns, got {_describe(row)}"
            )
        price_at, quantity_at, side_at, time_at, last_at, orders_at, update_at = layout
        try:
            price = _to_decimal(row[price_at])
            quantity = _to_decimal(row[quantity_at])
            side = _SIDE(row[side_at])
            if side is not Side.BUY and side is not Side.SELL:
                raise errors.DecodeError(f"side must be 0 (bid) or 1 (ask), got {side.name}")
            entry = L2Entry(
                price=price,
                quantity=quantity,
                side=side,
                instrument_id=instrument_id,
                number_of_orders=1 if orders_at is None else _to_int(row[orders_at]),
                action_date_time=_to_int(row[time_at]),
                md_update_id=0 if update_at is None else _to_int(row[update_at]),
                last_trade_price=_to_decimal(row[last_at]),
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetL2Snapshot row {index}: {exc}") from None
        if price <= 0 or quantity <= 0:
            continue
        key = (side, price)
        seen = levels.get(key)
        if seen is not None:
            entry = attrs.evolve(
                seen,
                quantity=seen.quantity + quantity,
                number_of_orders=seen.number_of_orders + entry.number_of_orders,
                action_date_time=max(seen.action_date_time, entry.action_date_time),
                md_update_id=max(seen.md_update_id, entry.md_update_id),
            )
        levels[key] = entry
    bids = sorted((e for e in levels.values() if e.side is Side.BUY), key=_price, reverse=True)
    asks = sorted((e for e in levels.values() if e.side is Side.SELL), key=_price)
    return L2Snapshot(instrument_id=instrument_id, bids=tuple(bids), asks=tuple(asks))


def _price(entry: L2Entry) -> Decimal:
    return entry.price


# ----------------------------------------------------------------------------- errors

_AUTH_METHODS = frozenset(
    {"authenticateuser", "authenticate2fa", "authenticate", "webauthenticateuser"}
)
_OPERATION_IN_PROCESS = 107
_REJECTED_CODES = frozenset({100, 101, 106})
_CODE_NAMES = {
    20: "Not Authorized",
    100: "Invalid Request",
    101: "Operation Failed",
    102: "Server Error",
    104: "Resource Not Found",
    106: "Operation Not Supported",
}
_STATUSCODE_CLASSES: dict[int, type[errors.ApiError]] = {
    32: errors.AuthenticationError,  # ticket calls: Not Authorized
    33: errors.NotFoundError,  # ticket calls: Asset_Manager_Not_Found
}
_INTERESTING = frozenset(
    {
        "result",
        "errorcode",
        "errormsg",
        "detail",
        "status",
        "statuscode",
        "authenticated",
        "requires2fa",
        "locked",
        "message",
    }
)

# A 2xx/3xx body is an error only through one of these keys (any casing): without them
# ``failed`` below cannot become true.  Keys already seen not to be one are remembered.
_DECIDING = frozenset({"result", "status", "authenticated"})
_NOT_DECIDING: set[Any] = set()
_NOT_DECIDING_LIMIT = 4096


def _cannot_fail(payload: Any) -> bool:
    """True when a body with a 2xx/3xx status is certainly a success (the common case)."""
    if type(payload) is not dict:
        return not isinstance(payload, Mapping)
    if _NOT_DECIDING.issuperset(payload):
        return True
    for key in payload:
        if isinstance(key, str) and key.lower() in _DECIDING:
            return False
    if len(_NOT_DECIDING) < _NOT_DECIDING_LIMIT:
        _NOT_DECIDING.update(payload)
    return True


def _code(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else _to_int(value)
    except errors.DecodeError:
        return None


def _text(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return ""
    return " ".join(str(value).split())[:300]


def _flag(value: Any) -> bool | None:
    try:
        return None if value is None else _to_bool(value)
    except errors.DecodeError:
        return None


def api_error(method: str, status: int, payload: Any) -> errors.ApiError | None:
    """Map an HTTP status and a decoded body to the matching error, or ``None`` for success.

    Pure.  HTTP 429, 401/403, 5xx and 404 decide the class by themselves; otherwise the
    body does: ``{result: false, errorcode}`` (107 "Operation In Process" is
    :class:`~kiiex_async.errors.OperationInProcessError`: busy, a read retries it),
    ``{status: "Rejected"}`` (SendOrder), ``{result: true, errorcode: 100, detail:
    "Insufficient Balance"}`` (CreateWithdrawTicket, sic; with ``result: true`` only a
    documented errorcode fails), ``{authenticated: false}``.  Any
    other 4xx is a plain :class:`~kiiex_async.errors.ApiError`.  The message reads
    ``"<Method>: <errormsg> (<detail>) [errorcode N]"``.
    """
    if status < 400 and _cannot_fail(payload):
        return None
    fields: dict[str, Any] = {}
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if isinstance(key, str):
                lowered = key.lower()
                if lowered in _INTERESTING:
                    fields[lowered] = value
    errorcode = _code(fields.get("errorcode"))
    statuscode = _code(fields.get("statuscode"))
    errormsg = _text(fields.get("errormsg")) or _text(fields.get("message"))
    detail = _text(fields.get("detail"))
    result = _flag(fields.get("result"))
    rejected = (
        isinstance(fields.get("status"), str)
        and fields["status"].strip().lower() == "rejected"
        and bool(errormsg or errorcode is not None)
    )
    unauthenticated = (
        _flag(fields.get("authenticated")) is False and _flag(fields.get("requires2fa")) is not True
    )
    failed = (
        rejected
        or unauthenticated
        or (result is False and (errorcode is not None or bool(errormsg)))
        # ``result: true`` fails only with a documented code (SLATE's insufficient
        # balance is 100): KIIEX's guide shows ``{result: true, errorcode: 1}`` for a
        # request it accepted, and calling an applied write failed could get it resent.
        or (result is True and errorcode in _CODE_NAMES)
    )

    cls: type[errors.ApiError] | None
    if status == 429:
        cls = errors.RateLimitedError
    elif status in (401, 403):
        cls = errors.AuthenticationError
    elif status >= 500:
        cls = errors.ServerError
    elif status == 404:
        cls = errors.NotFoundError
    elif failed:
        cls = _classify(errorcode, statuscode, f"{errormsg} {detail}".lower(), rejected)
        if unauthenticated:
            cls = errors.AuthenticationError
    elif status >= 400:
        cls = errors.AuthenticationError if method.lower() in _AUTH_METHODS else errors.ApiError
    else:
        return None

    if unauthenticated and not errormsg:
        errormsg = "authentication failed"
    if unauthenticated and _flag(fields.get("locked")):
        detail = detail or "the account is locked"
    message = _message(method, status, errormsg, detail, errorcode, statuscode)
    kwargs: dict[str, Any] = {
        "method": method,
        "status": status,
        "errorcode": errorcode,
        "errormsg": errormsg or None,
        "detail": detail or None,
    }
    if cls is errors.RateLimitedError:
        return errors.RateLimitedError(message, **kwargs)
    return cls(message, **kwargs)


def _classify(
    errorcode: int | None, statuscode: int | None, text: str, rejected: bool
) -> type[errors.ApiError]:
    if errorcode == _OPERATION_IN_PROCESS:
        return errors.OperationInProcessError
    if "insufficient" in text or "not_enough_funds" in text or "not enough funds" in text:
        return errors.InsufficientFundsError
    if errorcode == 20 or "not authorized" in text or "2facode" in text:
        return errors.AuthenticationError
    if errorcode == 104 or "not found" in text:
        return errors.NotFoundError
    if errorcode == 102:
        return errors.ServerError
    if errorcode is None and statuscode in _STATUSCODE_CLASSES:
        return _STATUSCODE_CLASSES[statuscode]
    if rejected or errorcode in _REJECTED_CODES:
        return errors.RejectedError
    return errors.ApiError


def _message(
    method: str,
    status: int,
    errormsg: str,
    detail: str,
    errorcode: int | None,
    statuscode: int | None,
) -> str:
    http_said = False
    if not errormsg:
        errormsg = _CODE_NAMES.get(errorcode or 0, "")
    if not errormsg:
        errormsg, http_said = _http_phrase(status), True
    parts = [f"{method}: {errormsg}"]
    if detail and detail != errormsg:
        parts.append(f"({detail})")
    if errorcode is not None:
        parts.append(f"[errorcode {errorcode}]")
    elif statuscode:
        parts.append(f"[statuscode {statuscode}]")
    if not http_said and not 200 <= status < 300:
        parts.append(f"[HTTP {status}]")
    return " ".join(parts)


def _http_phrase(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


_TOKEN_KEYS = frozenset({"sessiontoken", "aptoken"})


def session_token(payload: Any) -> str | None:
    """The session token of an authentication answer, if it carries a non-empty one.

    Looked for where AlphaPoint venues put it: a ``SessionToken`` (or ``APToken``) key in
    any casing, at the top level or inside the ``User`` object.  KIIEX's guide shows a
    login answer with none: the client then signs each request instead.
    """
    if not isinstance(payload, Mapping):
        return None
    token = _token_in(payload)
    if token is None:
        user = next(
            (v for k, v in payload.items() if isinstance(k, str) and _norm(k) == "user"), None
        )
        token = _token_in(user) if isinstance(user, Mapping) else None
    return token


def _token_in(data: Mapping[Any, Any]) -> str | None:
    for key, value in data.items():
        if isinstance(key, str) and _norm(key) in _TOKEN_KEYS:
            return value if isinstance(value, str) and value.strip() else None
    return None
