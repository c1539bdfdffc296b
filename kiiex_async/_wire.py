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

Requests are written by :func:`dumps`: compact JSON whose decimals are exact JSON numbers.

Speed: each model class gets a field table built once, and each distinct set of keys a
generated straight-line function (the way cattrs generates its own), so an object costs
one read per known field plus a conversion only when the JSON type differs from the
field's.  ``Decimal`` values are trusted to be finite and in range: :func:`loads` never
yields others.
When the generated code fails, a key-by-key pass reruns to name the failing field.
"""

from __future__ import annotations

import decimal
import enum
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from json.encoder import encode_basestring_ascii
from types import MemberDescriptorType, NoneType, UnionType
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


# Per enum: every int value and every spelling seen so far -> member (read by generated code).
_ENUM_KNOWN: dict[type[enum.Enum], dict[Any, enum.Enum]] = {}


def _enum_converter(cls: type[enum.Enum]) -> _Fn:
    by_text: dict[str, enum.Enum] = {}
    for member in cls:
        by_text[_norm(member.name)] = member
        by_text[str(member.value)] = member
    known: dict[Any, enum.Enum] = {member.value: member for member in cls}
    known.update(by_text)
    _ENUM_KNOWN[cls] = known
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


class _NoFastPath:
    """Stands for "no JSON value is already of this field's type"."""


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

_Entry = tuple[str, Any, _Fn, bool]  # field name, type taking the fast path, converter, alias?
_IGNORE: _Entry = ("", _NoFastPath, _SCALARS[Any], False)
_KEY_CACHE_LIMIT = 1024
# Distinct key sets compiled per class; a server sends only a handful per method.
_SHAPE_LIMIT = 64
_STRUCTURERS: dict[Any, _Fn] = {}


def _value_converter(tp: Any) -> tuple[Any, _Fn]:
    """(type that needs no conversion, converter) for one annotation."""
    if tp in _SCALARS:
        return (tp if tp is not Any else _NoFastPath), _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp, _structurer(tp)
    if isinstance(tp, type) and attrs.has(tp):
        return tp, _structurer(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = args[0] if args[1] is NoneType else args[1]
        fast, convert = _value_converter(inner)

        def optional(value: Any) -> Any:
            return None if value is None else convert(value)

        return fast, optional
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item_fast, item_convert = _value_converter(args[0])

        def sequence(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise errors.DecodeError(f"expected a list, got {_kind(value)}")
            return tuple(item if type(item) is item_fast else item_convert(item) for item in value)

        return _NoFastPath, sequence
    return _NoFastPath, lambda value: converter.structure(value, tp)


def _class_structurer(cls: type[Any]) -> _Fn:
    """Build the structuring function of one attrs class (called once per class)."""
    hints = typing.get_type_hints(cls)
    table: dict[str, _Entry] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        argument = field.alias or field.name
        override = _FIELD_OVERRIDES.get((cls, field.name))
        if override is not None:
            fast_type = str if override in (_json_text, _optional_json_text) else _NoFastPath
            entry: _Entry = (argument, fast_type, override, False)
        else:
            fast, convert = _value_converter(hints.get(field.name, Any))
            entry = (argument, fast, convert, False)
        key = _norm(field.name)
        if key in table:  # pragma: no cover - a model bug, caught by the test suite
            raise TypeError(f"{cls.__name__}: two fields read the wire key {key!r}")
        table[key] = entry
        if field.default is attrs.NOTHING:
            required.append(argument)
    for alias, target in _ALIASES.get(cls, {}).items():
        canonical = table[_norm(target)]
        table[alias] = (canonical[0], canonical[1], canonical[2], True)
    cache: dict[Any, _Entry] = dict(table)
    lookup = cache.get
    name_of_class = cls.__name__
    positional = _positional_parameters(cls)
    slots = _slot_setters(cls)

    def resolve(key: Any) -> _Entry:
        entry = table.get(_norm(key), _IGNORE) if isinstance(key, str) else _IGNORE
        if len(cache) < _KEY_CACHE_LIMIT:
            cache[key] = entry
        return entry

    def checked(data: Mapping[Any, Any]) -> Any:
        """Key by key, tracking the field so that errors can name it."""
        kwargs: dict[str, Any] = {}
        name = ""
        try:
            for key, value in data.items():
                name, fast, convert, alias = lookup(key) or resolve(key)
                if not name or (alias and name in kwargs):
                    continue
                kwargs[name] = value if type(value) is fast else convert(value)
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"{name_of_class}.{name}: {exc}") from None
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            raise errors.DecodeError(f"{name_of_class}.{name}: {type(exc).__name__}") from None
        missing = [argument for argument in required if argument not in kwargs]
        if missing:
            raise errors.DecodeError(
                f"{name_of_class}: missing required field(s) {', '.join(missing)}"
            )
        return cls(**kwargs)

    shapes: dict[tuple[Any, ...], _Fn] = {}

    def compile_shape(shape: tuple[Any, ...]) -> _Fn:
        """Straight-line code for one key set: the common case, many objects of one shape.

        Only model field names enter the source; wire keys and converters are constants
        of the namespace, so nothing a server sends can change the code.
        """
        if len(shapes) >= _SHAPE_LIMIT:
            return checked
        resolved = [(key, lookup(key) or resolve(key)) for key in shape]
        canonical = {entry[0] for _, entry in resolved if entry[0] and not entry[3]}
        steps: dict[str, tuple[Any, Any, _Fn]] = {}
        for key, (name, fast, convert, alias) in resolved:
            if name and not (alias and name in canonical):
                steps.pop(name, None)  # the last spelling of a key wins, as in a dict
                steps[name] = (key, fast, convert)
        namespace: dict[str, Any] = {
            "cls": cls,
            "Decimal": Decimal,
            "decimal_of_int": _INT_DECIMAL,
            "int": int,
            "bool": bool,
        }
        where = {key: index for index, key in enumerate(shape)}
        targets = ["_"] * len(shape)
        values: dict[str, str] = {}
        for name, (key, fast, convert) in steps.items():
            index = where[key]
            namespace[f"f{index}"], namespace[f"c{index}"] = fast, convert
            v, c = f"v{index}", f"c{index}"
            targets[index] = v
            if fast is Decimal:
                # .NET sends 0 and whole amounts as JSON ints.
                values[name] = (
                    f"{v} if type({v}) is Decimal else "
                    f"decimal_of_int[{v}] if type({v}) is int else {c}({v})"
                )
            elif fast in _ENUM_KNOWN:
                namespace[f"m{index}"] = _ENUM_KNOWN[fast]
                values[name] = (
                    f"m{index}[{v}] if type({v}) is not bool and {v} in m{index} else {c}({v})"
                )
            else:
                values[name] = f"{v} if type({v}) is f{index} else {c}({v})"
        # The shape is the exact key order of ``data``, so one unpacking reads every value.
        unpack = f"    {', '.join(targets)}, = data.values()\n" if shape else ""
        if slots is not None and slots[2].issubset(values):
            # Fill the slots directly: what the attrs __init__ does, minus its overhead.
            setters, defaults, _ = slots
            namespace["new"] = object.__new__
            lines = ["    obj = new(cls)\n"]
            for index, (name, setter) in enumerate(setters.items()):
                namespace[f"s{index}"] = setter
                if name in values:
                    lines.append(f"    s{index}(obj, {values[name]})\n")
                else:
                    namespace[f"d{index}"] = defaults[name]
                    lines.append(f"    s{index}(obj, d{index})\n")
            source = f"def build(data):\n{unpack}{''.join(lines)}    return obj\n"
        else:
            # Positional arguments bind faster than keywords: pass the leading run of
            # present fields by position.
            arguments = []
            for name in positional:
                if name not in values:
                    break
                arguments.append(values.pop(name))
            arguments += [f"{name}={value}" for name, value in values.items()]
            source = f"def build(data):\n{unpack}    return cls({', '.join(arguments)})\n"
        exec(compile(source, f"<kiiex_async._wire {name_of_class}>", "exec"), namespace)
        function: _Fn = namespace["build"]
        shapes[shape] = function
        return function

    def structure_object(data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, cls):
                return data
            if not isinstance(data, Mapping):
                raise errors.DecodeError(
                    f"{name_of_class}: expected a JSON object, got {_kind(data)}"
                )
        shape = tuple(data)
        build = shapes.get(shape)
        if build is None:
            build = compile_shape(shape)
        try:
            return build(data)
        except Exception:
            # Rerun slowly to report which field failed (or that a required one is missing).
            return checked(data)

    return structure_object


@attrs.frozen
class _FrozenProbe:
    """Only here to learn the ``__setattr__`` attrs gives frozen classes."""


_Setter = Callable[[Any, Any], None]
_FACTORY: type = type(attrs.Factory(list))


def _slot_setters(cls: type[Any]) -> tuple[dict[str, _Setter], dict[str, Any], set[str]] | None:
    """(slot setter per field, defaults, required fields) of a plain attrs model, or None.

    Plain: an attrs class with slots and no base class whose generated ``__init__`` only
    stores each argument in its slot: no validator, converter, factory, alias,
    ``__attrs_pre_init__``/``__attrs_post_init__``, cached hash or own ``__setattr__``.
    Building one is then ``object.__new__`` plus one slot store per field.
    """
    code = getattr(cls.__init__, "__code__", None)
    own_setattr = cls.__dict__.get("__setattr__")
    if (
        cls.__bases__ != (object,)
        or "__slots__" not in cls.__dict__
        or code is None
        or not code.co_filename.startswith("<attrs generated")
        or hasattr(cls, "__attrs_pre_init__")
        or hasattr(cls, "__attrs_post_init__")
        or own_setattr not in (None, _FrozenProbe.__dict__["__setattr__"])
    ):
        return None
    fields = attrs.fields(cls)
    if not set(cls.__slots__) <= {field.name for field in fields} | {"__weakref__"}:
        return None
    setters: dict[str, _Setter] = {}
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for field in fields:
        slot = cls.__dict__.get(field.name)
        if (
            not field.init
            or field.validator is not None
            or field.converter is not None
            or field.alias != field.name
            or isinstance(field.default, _FACTORY)
            or not isinstance(slot, MemberDescriptorType)
        ):
            return None
        setters[field.name] = slot.__set__
        if field.default is attrs.NOTHING:
            required.add(field.name)
        else:
            defaults[field.name] = field.default
    return setters, defaults, required


def _positional_parameters(cls: type[Any]) -> tuple[str, ...]:
    """The names ``cls(...)`` takes by position, in order (attrs: the non-kw-only fields)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - every model has a signature
        return ()
    names = []
    for parameter in parameters:
        if parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            break
        names.append(parameter.name)
    return tuple(names)


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
        function = _class_structurer(cls)
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
    try:
        return [function(item) for item in data]
    except errors.DecodeError:
        for index, item in enumerate(data):
            try:
                function(item)
            except errors.DecodeError as exc:
                raise errors.DecodeError(f"item {index}: {exc}") from None
        raise  # pragma: no cover - the loop above raises


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
