"""JSON and numbers on the wire: decoding with range checks, exact ``Decimal`` encoding.

:func:`loads` reads a body: numbers with a fraction or exponent become exact ``Decimal``
(built in a context that refuses anything beyond ±:data:`MAX_EXPONENT`), ``NaN`` and
``Infinity`` are refused.  :func:`encode` (and :func:`dumps` for a body) writes compact
JSON whose decimals are exact plain numbers (:func:`decimal_text`).  Part of
:mod:`kiiex_async._wire`, which re-exports the public names.
"""

from __future__ import annotations

import decimal
import enum
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from . import errors

__all__ = [
    "MAX_EXPONENT",
    "decimal_text",
    "dumps",
    "encode",
    "exact_decimal",
    "loads",
    "loads_rows",
]


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
_TEXT_OPENERS = ("{", "[")
#: A ``Decimal`` from an ``int`` or numeric text under the rule :func:`loads` applies to
#: every number with a fraction: beyond ±:data:`MAX_EXPONENT` or 1,000 digits it raises
#: an ``ArithmeticError`` (``decimal.Overflow``, ``Underflow``, ``Inexact``...).
exact_decimal: Final[Callable[[int | str], Decimal]] = _IN_RANGE.create_decimal
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
            if body[:1] in _TEXT_OPENERS:
                return _scan(body, _SCAN)
            text = body
        else:
            raw = body if type(body) is bytes else bytes(body)
            # An object or array opened by an ASCII byte is UTF-8: json.detect_encoding
            # would say so too, only slower (it looks for BOMs and UTF-16/32 zero bytes).
            if raw[:1] in _OPENERS and raw[1:2] != b"\x00":
                return _scan(raw.decode("utf-8", "surrogatepass"), _SCAN)
            text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise errors.DecodeError(_not_json(body, exc)) from None
    except ArithmeticError:
        raise errors.DecodeError(_OUT_OF_RANGE) from None


def loads_rows(text: str) -> Any:
    """Decode JSON text, keeping numbers with a fraction as their text, exactly as sent.

    For hot market-data rows that convert only the columns they use, with
    :data:`exact_decimal` (the range rule of :func:`loads`).  Integers stay ``int``;
    ``NaN``/``Infinity`` are refused.  Raises :class:`~kiiex_async.errors.DecodeError` for
    anything that is not JSON.
    """
    try:
        if text[:1] in _TEXT_OPENERS:
            return _scan(text, _SCAN_TEXT)
        return _TEXT_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise errors.DecodeError(_not_json(text, exc)) from None


def _scan(text: str, scan: _Scanner) -> Any:
    """``decode(text)`` for a text that opens an object or array at once: a decoder's C
    scanner itself, without the two whitespace matches ``decode`` makes around it."""
    try:
        value, end = scan(text, 0)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    if end != len(text):
        rest = text[end:].lstrip(_JSON_SPACE)
        if rest:
            raise json.JSONDecodeError("Extra data", text, len(text) - len(rest))
    return value


_Scanner = Callable[[str, int], tuple[Any, int]]
# The decoders' C scanners (typeshed does not declare the attribute).
_SCAN: Final[_Scanner] = _DECODER.scan_once  # type: ignore[attr-defined]
_TEXT_DECODER = json.JSONDecoder(parse_float=str, parse_constant=_reject_constant)
_SCAN_TEXT: Final[_Scanner] = _TEXT_DECODER.scan_once  # type: ignore[attr-defined]
_JSON_SPACE: Final = " \t\n\r"
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
        separator = ""
        for key, item in value.items():
            label = _LABELS.get(key) if type(key) is str else None
            if label is None:
                label = _label(key)
            out.append(separator)
            out.append(label)
            separator = ","
            # Most values of a request are ints and text: written here, without a call.
            kind = type(item)
            if kind is int:
                out.append(int.__repr__(item))
            elif kind is str:
                out.append(encode_basestring_ascii(item))
            else:
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


#: ``"Key":`` of the keys seen so far: requests use a few dozen names over and over.
_LABELS: dict[str, str] = {}
_LABELS_LIMIT = 1024


def _label(key: Any) -> str:
    """``"key":`` as a request writes it (a key that is not text is refused)."""
    if not isinstance(key, str):
        raise errors.InvalidInputError(f"request keys must be str, got {type(key).__name__}")
    label = encode_basestring_ascii(key) + ":"
    if type(key) is str and len(_LABELS) < _LABELS_LIMIT:
        _LABELS[key] = label
    return label


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
