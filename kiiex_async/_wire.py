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

This module is the package-facing face of the wire: the rest of the SDK imports
``_wire`` and calls the names below, which live in its rooms:

* :mod:`~kiiex_async._wire_json`: JSON and numbers (:func:`loads`, range checks,
  :func:`decimal_text`, :func:`encode`, :func:`dumps`);
* :mod:`~kiiex_async._wire_scalars`: scalar converters and enum members;
* :mod:`~kiiex_async._wire_structure`: model structuring (:func:`structure`,
  :func:`structure_list`, the cattrs :data:`converter`; how it stays fast);
* :mod:`~kiiex_async._wire_rows`: market-data rows (:func:`parse_level1_summary`,
  :func:`parse_ticker_history`, :func:`parse_l2_snapshot`, :func:`parse_public_trade`);
* :mod:`~kiiex_async._wire_errors`: the error table (:func:`api_error`,
  :func:`session_token`).
"""

from __future__ import annotations

from ._wire_errors import api_error, session_token
from ._wire_json import MAX_EXPONENT, decimal_text, dumps, encode, loads
from ._wire_rows import (
    parse_l2_snapshot,
    parse_level1_summary,
    parse_public_trade,
    parse_ticker_history,
)
from ._wire_structure import converter, structure, structure_list

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
    "parse_public_trade",
    "parse_ticker_history",
    "session_token",
    "structure",
    "structure_list",
]
