"""The simulator's own JSON: written by hand so no SDK converter can hide a wire bug.

``dumps`` writes ``Decimal`` as an exact JSON number (plain notation, trailing zeros
stripped) and refuses ``float``, so money can never pass through binary floating point.
``loads`` reads numbers with a fraction or exponent as ``Decimal`` (ints stay ints), the way
ccxt's floats and notbank's numeric strings both arrive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["decimal_text", "dumps", "dumps_text", "loads"]


def decimal_text(value: Decimal) -> str:
    """``Decimal("100.50")`` -> ``"100.5"``; never an exponent; ``-0`` -> ``"0"``."""
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _write(value: Any, out: list[str]) -> None:
    # Order of the checks matters: bool is an int, and str/int/Decimal are the hot cases.
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        sep = "{"
        for key, item in value.items():
            out.append(sep)
            out.append(encode_basestring_ascii(str(key)))
            out.append(":")
            _write(item, out)
            sep = ","
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        sep = "["
        for item in value:
            out.append(sep)
            _write(item, out)
            sep = ","
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} to the wire (floats are refused)")


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of ``value`` (dict, list, str, int, bool, None, Decimal)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode()


def dumps_text(value: Any) -> str:
    """Like :func:`dumps` but returns ``str`` (for JSON fields that carry JSON text)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def loads(data: bytes | str) -> Any:
    """Parse JSON with ``parse_float=Decimal``; NaN/Infinity are refused (``ValueError``)."""
    return json.loads(data, parse_float=Decimal, parse_constant=_no_constant)
