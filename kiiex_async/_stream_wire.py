"""The stream's wire rules (pure): its URL, its backoff, and how a reply frame becomes the
HTTP call's result or error.

``ws_url_for`` derives ``<ws|wss>://<host>/WSGateway`` from the HTTP base URL;
``backoff_delay`` is the reconnect wait ("equal jitter"); ``decode_reply`` maps one ``m: 1``
or ``m: 5`` frame through the same error table (:func:`kiiex_async._wire.api_error`) and the
same models as the HTTP methods, and applies the write rule: an unreadable answer to a write
is an :class:`~kiiex_async.errors.UnknownOutcomeError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import yarl

from . import _wire
from ._backoff import equal_jitter as backoff_delay
from ._rules import read_answer
from .errors import ApiError, ConfigurationError
from .models import (
    AuthResult,
    DepositTicket,
    DepositTicketCreated,
    GenericResult,
    Instrument,
    Level1,
    Order,
    Pong,
    Position,
    Product,
    SendOrderResult,
    Trade,
    WithdrawFee,
    WithdrawTicket,
)

__all__ = [
    "ERROR",
    "EVENT",
    "REPLY",
    "REQUEST",
    "WRITES",
    "backoff_delay",
    "decode_reply",
    "decode_result",
    "is_write",
    "ws_url_for",
]

T = TypeVar("T")
REQUEST, REPLY, SUBSCRIBE, EVENT, UNSUBSCRIBE, ERROR = range(6)
#: Methods sent once: a lost reply makes their outcome unknown.
WRITES: Final = frozenset(
    {"sendorder", "cancelorder", "cancelallorders", "cancelreplaceorder"}
    | {"createwithdrawticket", "createdepositticket"}
)


def is_write(method: str) -> bool:
    """Whether ``method`` is a write: sent once, a lost reply making its outcome unknown."""
    return method.lower() in WRITES


def ws_url_for(base_url: str) -> str:
    """``https://host/ap`` → ``wss://host/WSGateway`` (``http`` → ``ws``; port kept)."""
    url = yarl.URL(base_url)
    if url.scheme not in ("http", "https", "ws", "wss"):
        raise ConfigurationError(f"cannot derive a WebSocket URL from {base_url!r}")
    scheme = "wss" if url.scheme in ("https", "wss") else "ws"
    return str(url.with_scheme(scheme).with_path("/WSGateway").with_query(None))


def _structure(cls: type[T]) -> Callable[[Any, Mapping[str, Any]], T]:
    return lambda data, _request: _wire.structure(data, cls)


def _structure_list(cls: type[T]) -> Callable[[Any, Mapping[str, Any]], list[T]]:
    return lambda data, _request: _wire.structure_list(data, cls)


def _l2(data: Any, request: Mapping[str, Any]) -> Any:
    instrument = request.get("InstrumentId", 0)
    return _wire.parse_l2_snapshot(data, instrument if isinstance(instrument, int) else 0)


#: What ``call`` turns each answer into: the models the HTTP methods return.
_RESULTS: Final[dict[str, Callable[[Any, Mapping[str, Any]], Any]]] = {
    "ping": _structure(Pong),
    "authenticateuser": _structure(AuthResult),
    "authenticate2fa": _structure(AuthResult),
    "webauthenticateuser": _structure(AuthResult),
    "getproducts": _structure_list(Product),
    "getinstruments": _structure_list(Instrument),
    "getinstrument": _structure(Instrument),
    "getlevel1": _structure(Level1),
    "getl2snapshot": _l2,
    "getaccountpositions": _structure_list(Position),
    "sendorder": _structure(SendOrderResult),
    "cancelorder": _structure(GenericResult),
    "getorderstatus": _structure(Order),
    "getopenorders": _structure_list(Order),
    "getordershistory": _structure_list(Order),
    "gettradeshistory": _structure_list(Trade),
    "createdepositticket": _structure(DepositTicketCreated),
    "getdeposittickets": _structure_list(DepositTicket),
    "getdepositticket": _structure(DepositTicket),
    "createwithdrawticket": _structure(GenericResult),
    "getwithdrawtickets": _structure_list(WithdrawTicket),
    "getwithdrawticket": _structure(WithdrawTicket),
    "getwithdrawfee": _structure(WithdrawFee),
}


def decode_reply(
    method: str, m: int, o: Any, request: Mapping[str, Any], *, raw: bool = False
) -> Any:
    """Map one reply frame to the HTTP call's result or error (pure).

    An unreadable answer goes through the client's own rule
    (:func:`~kiiex_async._rules.read_answer`): after a write the outcome is unknown.
    ``raw``: the answer's JSON once checked for errors, not its model (see
    :func:`decode_result`).
    """
    payload = read_answer(method, _payload, o, write=is_write(method))
    if m == ERROR:
        raise _wire.api_error(method, 200, payload) or ApiError(
            f"{method}: the gateway answered an error frame", method=method
        )
    error = _wire.api_error(method, 200, payload)
    if error is not None:
        raise error
    return payload if raw else decode_result(method, payload, request)


def decode_result(method: str, payload: Any, request: Mapping[str, Any]) -> Any:
    """The model the HTTP method returns, built from an answer already checked for errors."""
    convert = _RESULTS.get(method.lower())
    if convert is None:
        return payload
    return read_answer(method, convert, payload, request, write=is_write(method))


def _payload(o: Any) -> Any:
    """A frame's ``o``: JSON text decoded, anything else as it came."""
    return _wire.loads(o) if isinstance(o, str | bytes) else o
