"""Request parameters as AlphaPoint clients send them: case-insensitive keys, tolerant values.

:class:`Params` reads one request's keys in any casing and its values as JSON numbers,
numeric strings, enum names or JSON text; a value of the wrong shape is
:class:`BadRequest` (errorcode 100, rendered as AlphaPoint's generic error object).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from ._json import loads
from ._records import ExchangeError

__all__ = ["BadRequest", "Params"]

_T = TypeVar("_T")


class BadRequest(ExchangeError):
    """A request value of the wrong shape (errorcode 100)."""

    def __init__(self, detail: str) -> None:
        super().__init__(100, "Invalid Request", detail)


def _default(name: str, default: _T | None) -> _T:
    """What an absent or empty parameter stands for: ``default``, unless it is required."""
    if default is None:
        raise BadRequest(f"{name} is required")
    return default


class Params:
    """Request parameters with case-insensitive keys and tolerant value parsing."""

    __slots__ = ("_data",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._data = {str(k).lower(): v for k, v in raw.items()}

    def raw(self, name: str) -> Any:
        """The value as sent (``None`` if absent)."""
        return self._data.get(name.lower())

    def has(self, name: str) -> bool:
        """True when the key is present with a non-empty value."""
        value = self._data.get(name.lower())
        return value is not None and value != ""

    def integer(
        self, name: str, default: int | None = None, *, names: Mapping[str, int] | None = None
    ) -> int:
        """An int from an int, an integral Decimal, a numeric string or an enum name."""
        value = self._data.get(name.lower())
        if value is None or value == "":
            return _default(name, default)
        if isinstance(value, bool):
            raise BadRequest(f"{name} must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and names is not None:
            key = value.strip().lower().replace("_", "")
            if key in names:
                return names[key]
        try:
            number = Decimal(value.strip()) if isinstance(value, str) else value
            if (
                isinstance(number, Decimal)
                and number.is_finite()
                and number == number.to_integral()
            ):
                return int(number)
        except InvalidOperation:
            pass
        raise BadRequest(f"{name} must be an integer")

    def decimal(self, name: str, default: Decimal | None = None) -> Decimal:
        """A Decimal from a number or a numeric string (NaN/Infinity refused)."""
        value = self._data.get(name.lower())
        if value is None or value == "":
            return _default(name, default)
        if isinstance(value, bool):
            raise BadRequest(f"{name} must be a number")
        try:
            number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise BadRequest(f"{name} must be a number")
        if not number.is_finite():
            raise BadRequest(f"{name} must be a finite number")
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        """A bool from true/false, 1/0 or their strings."""
        value = self._data.get(name.lower())
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise BadRequest(f"{name} must be true or false")

    def text(self, name: str, default: str = "") -> str:
        """A string (numbers are turned into their text)."""
        value = self._data.get(name.lower())
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | Decimal):
            return str(value)
        raise BadRequest(f"{name} must be a string")

    def json_value(self, name: str) -> Any:
        """A value that may arrive as JSON text (``"[1,2]"``) or as the JSON itself."""
        value = self._data.get(name.lower())
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return loads(text)
            except ValueError:
                raise BadRequest(f"{name} is not valid JSON")
        return value
