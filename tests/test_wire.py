"""The wire layer: JSON, the converter, market-data rows and error mapping (pure)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiiex_async import _wire, errors
from kiiex_async._rules import query_params, read_answer
from kiiex_async.models import (
    AuthResult,
    ChangeReason,
    DepositInfo,
    DepositStatus,
    DepositTicket,
    DepositTicketCreated,
    GenericResult,
    Instrument,
    Level1,
    MakerTaker,
    Order,
    OrderState,
    OrderType,
    Pong,
    Position,
    Product,
    ProductType,
    SendOrderResult,
    SessionStatus,
    Side,
    Trade,
    TradeDirection,
    UserInfo,
    WithdrawFee,
    WithdrawStatus,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> Any:
    """Decode one sample payload file with the SDK's own JSON reader."""
    return _wire.loads((PAYLOADS / name).read_bytes())


# ----------------------------------------------------------------------------- loads


def test_loads_keeps_net_decimals_exact_and_ints_int() -> None:
    """A 28-digit .NET decimal decodes to the exact Decimal; integers stay int."""
    data = _wire.loads(b'{"a": 0.0000000100000000000000000000, "b": 7, "c": 1.5e3}')
    assert data["a"] == Decimal("1E-8")
    assert str(data["a"]) == str(Decimal("0.0000000100000000000000000000"))
    assert type(data["b"]) is int
    assert data["c"] == Decimal(1500)
    assert type(data["c"]) is Decimal


def test_loads_accepts_str_and_utf8_bom() -> None:
    """Text and BOM-prefixed UTF-8 bytes both decode."""
    assert _wire.loads('{"x": "ñ"}') == {"x": "ñ"}
    assert _wire.loads(b"\xef\xbb\xbf[1]") == [1]


def test_loads_detects_utf16_and_utf32_without_a_bom() -> None:
    """UTF-16/32 bodies (zero bytes after the opening brace) still decode."""
    text = '{"a": 1.50, "b": [1]}'
    for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        assert _wire.loads(text.encode(encoding)) == {"a": Decimal("1.50"), "b": [1]}
    # Outside the annotation on purpose: a bytearray is read like bytes.
    assert _wire.loads(bytearray(b"[1, 2.5]")) == [1, Decimal("2.5")]  # type: ignore[arg-type]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_loads_refuses_non_finite_constants(constant: str) -> None:
    """NaN and Infinity are not money: DecodeError, never a float."""
    with pytest.raises(errors.DecodeError):
        _wire.loads(f'{{"a": {constant}}}')


def test_loads_html_error_page_names_its_title() -> None:
    """An HTML error page is a DecodeError that quotes only the page title."""
    with pytest.raises(errors.DecodeError, match=r"HTML page.*502 Bad Gateway"):
        _wire.loads((PAYLOADS / "html_error.html").read_bytes())


@pytest.mark.parametrize(
    ("body", "expected"), [(b"", "empty"), (b"  \n", "empty"), (b"garbage{", "not valid JSON")]
)
def test_loads_garbage_is_decode_error(body: bytes, expected: str) -> None:
    """Empty and garbage bodies raise DecodeError with a reason."""
    with pytest.raises(errors.DecodeError, match=expected):
        _wire.loads(body)


@pytest.mark.parametrize(
    "body",
    [b'{"a":1} x', b"[1] [2]", b'{"a":1}\xc2\xa0', b"[1,2", b"{", b"[", b'{"a":}', b'{"a":1}}'],
)
def test_loads_reads_a_body_exactly_as_json_loads_accepts_it(body: bytes) -> None:
    """Bodies opening with { or [ are read by the scanner directly: trailing data, an
    unclosed value and non-JSON whitespace fail at the position json.loads names."""
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(body)
    with pytest.raises(errors.DecodeError) as info:
        _wire.loads(body)
    ref = reference.value
    assert str(info.value).endswith(f"{ref.msg} at line {ref.lineno} column {ref.colno}")


@pytest.mark.parametrize("body", [b'{"a":1} ', b'{"a":1}\r\n\t ', b"[]", b"{}\n"])
def test_loads_takes_json_whitespace_after_the_value(body: bytes) -> None:
    """Whitespace after the value is JSON's own and is accepted."""
    assert _wire.loads(body) == json.loads(body)


def test_loads_error_never_quotes_the_body() -> None:
    """A truncated authentication answer does not leak its session token in the error."""
    body = b'{"Authenticated":true,"SessionToken":"4a2a5857-c4e5-4fac-b09e'
    with pytest.raises(errors.DecodeError) as info:
        _wire.loads(body)
    assert "4a2a5857" not in str(info.value)


# ----------------------------------------------------------------------------- dumps


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("100.50"), "100.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("0.0000000100000000000000000000"), "0.00000001"),
        (Decimal("-0.000"), "0"),
        (Decimal("0E-8"), "0"),
        (Decimal("-12.3400"), "-12.34"),
        (Decimal("79228162514264337593543950335"), "79228162514264337593543950335"),
    ],
)
def test_dumps_writes_decimals_as_exact_plain_numbers(value: Decimal, text: str) -> None:
    """Decimals become JSON numbers with no exponent and no trailing zeros."""
    assert _wire.dumps({"Amount": value}) == f'{{"Amount":{text}}}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        Decimal("100.50"),
        Decimal("1E+3"),
        Decimal("-0.000"),
        Decimal("0.0000000100000000000000000000"),
    ],
)
def test_body_and_query_write_a_decimal_the_same_way(value: Decimal) -> None:
    """A JSON body and a GET query string write one Decimal identically: exact, no exponent."""
    body = json.loads(_wire.dumps({"Amount": value}), parse_float=str, parse_int=str)
    query = query_params({"Amount": value, "Amounts": [value]})
    assert query == {"Amount": body["Amount"], "Amounts": f"[{body['Amount']}]"}
    assert "E" not in query["Amount"].upper() and Decimal(query["Amount"]) == value


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity"), 0.5, [0.5]])
def test_body_and_query_refuse_the_same_numbers(value: Any) -> None:
    """NaN, Infinity and floats are refused in a query string as in a body."""
    with pytest.raises(errors.InvalidInputError):
        _wire.dumps({"Amount": value})
    with pytest.raises(errors.InvalidInputError):
        query_params({"Amount": value})


def test_dumps_enums_nesting_and_literals() -> None:
    """Enums are ints; nested mappings, lists, bools and null are compact JSON."""
    body = _wire.dumps(
        {
            "Side": Side.SELL,
            "OrderType": OrderType.MARKET,
            "PostOnly": False,
            "UseMargin": True,
            "RequestCode": None,
            "TemplateForm": {"ExternalAddress": "0xabc", "Amount": Decimal("1.10")},
            "Ids": [1, (2, Decimal("3.0"))],
        }
    )
    assert body == (
        b'{"Side":1,"OrderType":1,"PostOnly":false,"UseMargin":true,"RequestCode":null,'
        b'"TemplateForm":{"ExternalAddress":"0xabc","Amount":1.1},"Ids":[1,[2,3]]}'
    )


def test_dumps_escapes_non_ascii_and_round_trips() -> None:
    """Non-ASCII text is escaped to ASCII JSON and decodes back unchanged."""
    body = _wire.dumps({"Name": 'Peso "colombiano" ñ\n'})
    assert body.isascii()
    assert json.loads(body) == {"Name": 'Peso "colombiano" ñ\n'}


@pytest.mark.parametrize(
    "bad", [0.1, Decimal("NaN"), Decimal("Infinity"), object(), {1: "x"}, {"a": {2.5}}]
)
def test_dumps_refuses_floats_non_finite_and_unknown(bad: Any) -> None:
    """Floats, NaN/Infinity and unencodable values raise InvalidInputError."""
    with pytest.raises(errors.InvalidInputError):
        _wire.dumps(bad if isinstance(bad, dict) else {"Amount": bad})


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=Decimal("-1e30"), max_value=Decimal("1e30")
    )
)
def test_decimal_round_trip_through_dumps_and_loads_is_exact(value: Decimal) -> None:
    """Any finite Decimal survives dumps -> loads with exactly the same value."""
    decoded = _wire.loads(_wire.dumps({"v": value, "nested": [value]}))
    assert Decimal(decoded["v"]) == value
    assert Decimal(decoded["nested"][0]) == value


@given(st.decimals(allow_nan=False, allow_infinity=False, places=28))
def test_net_28_digit_decimals_round_trip(value: Decimal) -> None:
    """28-fractional-digit decimals (the .NET format) round-trip exactly."""
    assert Decimal(_wire.loads(_wire.dumps({"v": value}))["v"]) == value


# --------------------------------------------------------------------- sample payloads


def test_get_products_old_numeric_form() -> None:
    """Old GetProducts rows (numbers) decode with enum names and exact tick sizes."""
    products = _wire.structure_list(payload("get_products_old.json"), Product)
    assert [p.symbol for p in products] == ["BTC", "COP"]
    btc, cop = products
    assert btc.product_type is ProductType.CRYPTO_CURRENCY
    assert btc.tick_size == Decimal("0.00000001")
    assert btc.decimal_places == 8
    assert cop.product_type is ProductType.NATIONAL_CURRENCY
    assert cop.tick_size == Decimal("0.01")
    assert cop.product_full_name == "Peso colombiano"


def test_get_products_new_string_form() -> None:
    """Newer GetProducts rows carry numbers as strings; they decode to int and Decimal."""
    (btc,) = _wire.structure_list(payload("get_products_new.json"), Product)
    assert btc == Product(
        product_id=1,
        product="BTC",
        product_full_name="Bitcoin",
        product_type=ProductType.CRYPTO_CURRENCY,
        decimal_places=8,
        tick_size=Decimal("0.00000001"),
        deposit_enabled=True,
        withdraw_enabled=True,
        no_fees=False,
        is_disabled=False,
        oms_id=1,
    )


def test_get_instruments() -> None:
    """Instruments decode increments, minimums and session status (string or name)."""
    ltc, usdt = _wire.structure_list(payload("get_instruments.json"), Instrument)
    assert (ltc.instrument_id, ltc.symbol, ltc.product1_symbol, ltc.product2_symbol) == (
        3,
        "LTCBTC",
        "LTC",
        "BTC",
    )
    assert ltc.quantity_increment == Decimal("0.00000001")
    assert ltc.price_increment == Decimal("0.00000001")
    assert ltc.minimum_quantity == Decimal("0.01")
    assert ltc.minimum_price == Decimal("0.000001")
    assert ltc.session_status is SessionStatus.RUNNING
    assert ltc.is_active
    assert usdt.quantity_increment == Decimal("0.01")
    assert usdt.minimum_quantity == Decimal(1)
    assert usdt.session_status is SessionStatus.PAUSED
    assert usdt.is_disable is True
    assert usdt.sort_index == 1
    assert not usdt.is_active


def test_get_level1() -> None:
    """Level1 decodes prices exactly, the string TimeStamp and Rolling24NumTrades."""
    level1 = _wire.structure(payload("get_level1.json"), Level1)
    assert level1.instrument_id == 8
    assert level1.best_bid == Decimal("19069.31")
    assert level1.best_offer == Decimal("19069.32")
    assert level1.last_traded_qty == Decimal("0.0001")
    assert level1.current_day_notional == Decimal("1.906932")
    assert level1.rolling_24hr_volume == Decimal("0.0001")
    assert level1.rolling_24_num_trades == 1
    assert level1.time_stamp == 1607040406425
    assert level1.last_trade_time == 1607040406424
    assert level1.mid == Decimal("19069.315")


def test_get_level1_summary_min_node_columns() -> None:
    """The default (notbank-node) column order maps change, percent, volume."""
    first, second = _wire.parse_level1_summary(payload("get_level1_summary_min.json"))
    assert (first.instrument_id, first.symbol) == (1, "USDTCOPM")
    assert first.last_traded_px == Decimal("4012.5")
    assert first.rolling_24hr_px_change == Decimal("-12.5")
    assert first.rolling_24hr_px_change_percent == Decimal("-0.31")
    assert first.rolling_24hr_volume == Decimal("1520.25")
    assert second.last_traded_px == Decimal("1.0001")
    assert second.rolling_24hr_volume == Decimal("980000.5")


def test_get_level1_summary_min_python_columns() -> None:
    """The notbank-python column order puts the volume third."""
    first, _ = _wire.parse_level1_summary(payload("get_level1_summary_min.json"), columns="python")
    assert first.rolling_24hr_volume == Decimal("-12.5")
    assert first.rolling_24hr_px_change == Decimal("-0.31")
    assert first.rolling_24hr_px_change_percent == Decimal("1520.25")


def test_level1_summary_accepts_json_text_and_objects() -> None:
    """Rows sent as JSON text, or as objects, parse the same way."""
    (row,) = _wire.parse_level1_summary('[[2, "USDCCOPM", "4000", 1, 2, 3]]')
    assert (row.instrument_id, row.last_traded_px, row.rolling_24hr_volume) == (
        2,
        Decimal(4000),
        Decimal(3),
    )
    (obj,) = _wire.parse_level1_summary(
        [
            {
                "InstrumentId": 2,
                "InstrumentSymbol": "USDCCOPM",
                "LastTradedPx": 1,
                "Rolling24HrPxChange": 2,
                "Rolling24HrPxChangePercent": 3,
                "Rolling24HrVolume": 4,
            }
        ]
    )
    assert obj.symbol == "USDCCOPM"
    assert obj.rolling_24hr_volume == Decimal(4)


def test_level1_summary_rejects_bad_rows_and_columns() -> None:
    """A row without an instrument id is a DecodeError naming the row; an unknown layout is
    bad input."""
    with pytest.raises(errors.DecodeError, match="row 1: expected up to 6 columns"):
        _wire.parse_level1_summary([[1, "A", 1, 2, 3, 4], []])
    with pytest.raises(errors.DecodeError, match="row 0: expected an integer, got a non-num"):
        _wire.parse_level1_summary([["text"]])
    with pytest.raises(errors.DecodeError, match="row 0: expected a decimal"):
        _wire.parse_level1_summary([[1, "A", "x", 2, 3, 4]])
    with pytest.raises(errors.InvalidInputError, match="columns"):
        _wire.parse_level1_summary([], columns="ruby")


def test_l2_snapshot_ten_columns() -> None:
    """The 10-column layout: bids high->low, asks low->high, zero-quantity rows dropped."""
    book = _wire.parse_l2_snapshot(payload("get_l2_snapshot_10col.json"), 8)
    assert book.instrument_id == 8
    assert [(e.price, e.quantity) for e in book.bids] == [
        (Decimal("19069.31"), Decimal("0.140095")),
        (Decimal("19068.5"), Decimal("1.5")),
    ]
    assert [(e.price, e.quantity) for e in book.asks] == [
        (Decimal("19069.32"), Decimal("0.25")),
        (Decimal("19075"), Decimal("2.0")),
    ]
    assert book.bids[1].number_of_orders == 3
    assert book.asks[1].md_update_id == 97244116
    assert book.asks[0].action_date_time == 1607456142964
    assert book.asks[0].last_trade_price == Decimal("19069.32")
    assert all(e.side is Side.BUY for e in book.bids)
    assert all(e.side is Side.SELL for e in book.asks)
    assert book.best_bid == Decimal("19069.31")
    assert book.best_ask == Decimal("19069.32")


def test_l2_snapshot_nine_columns_merges_orders_into_levels() -> None:
    """The 9-column KIIEX layout (one row per order) is merged per price; blanks dropped."""
    book = _wire.parse_l2_snapshot(payload("get_l2_snapshot_9col.json"), 1)
    assert [(e.price, e.quantity, e.number_of_orders) for e in book.bids] == [
        (Decimal("3999.5"), Decimal("15.25"), 2),
        (Decimal(3998), Decimal(7), 1),
    ]
    assert [(e.price, e.quantity) for e in book.asks] == [
        (Decimal("4000.5"), Decimal("2.5")),
        (Decimal("4001.25"), Decimal("3.5")),
    ]
    assert book.bids[0].action_date_time == 1700000000002
    assert book.bids[0].instrument_id == 1


def test_l2_snapshot_bad_rows() -> None:
    """Rows of another width or with a side other than bid/ask are DecodeErrors."""
    with pytest.raises(errors.DecodeError, match="row 0: expected 9 or 10 columns, got 3"):
        _wire.parse_l2_snapshot([[1, 2, 3]], 1)
    with pytest.raises(errors.DecodeError, match="side must be 0"):
        _wire.parse_l2_snapshot([[1, 1, 1, 0, 1, 1, 5, 1, 1, 2]], 1)
    assert _wire.parse_l2_snapshot([], 4).bids == ()
    assert _wire.parse_l2_snapshot("[]", 4).asks == ()


def test_get_account_positions() -> None:
    """Positions decode amount and hold exactly; available is amount - hold."""
    btc, usdt = _wire.structure_list(payload("get_account_positions.json"), Position)
    assert (btc.account_id, btc.product_id, btc.product_symbol) == (449, 1, "BTC")
    assert btc.amount == Decimal(10)
    assert btc.total_day_deposits == Decimal(10)
    assert btc.notional_product_id == 8
    assert usdt.amount == Decimal("2345.52513")
    assert usdt.hold == Decimal("100.25")
    assert usdt.available == Decimal("2245.27513")


def test_order_working() -> None:
    """A working limit order: Instrument/Account aliases, names to enums, exact numbers."""
    order = _wire.structure(payload("order_working.json"), Order)
    assert order.order_id == 2543565233
    assert (order.instrument_id, order.account_id) == (8, 449)
    assert order.side is Side.BUY
    assert order.order_type is OrderType.LIMIT
    assert order.order_state is OrderState.WORKING
    assert order.change_reason is ChangeReason.NEW_INPUT_ACCEPTED
    assert order.price == Decimal(19010)
    assert order.quantity == order.orig_quantity == Decimal("0.345")
    assert order.quantity_executed == 0
    assert order.receive_time == 1607579326003
    assert not order.order_state.is_final


def test_order_canceled() -> None:
    """A canceled order keeps its client id (max signed 64-bit) and cancel reason."""
    order = _wire.structure(payload("order_canceled.json"), Order)
    assert order.side is Side.SELL
    assert order.order_state is OrderState.CANCELED
    assert order.order_state.is_final
    assert order.change_reason is ChangeReason.USER_MODIFIED
    assert order.client_order_id == 2**63 - 1
    assert order.quantity == 0
    assert order.price == Decimal("19200.5")
    assert order.cancel_reason == "UserModified"
    assert order.time_in_force == 1


def test_order_filled_market() -> None:
    """A filled market order: FullyExecuted, exact average price and gross value."""
    order = _wire.structure(payload("order_filled_market.json"), Order)
    assert order.order_type is OrderType.MARKET
    assert order.order_state is OrderState.FULLY_EXECUTED
    assert order.change_reason is ChangeReason.TRADE
    assert order.avg_price == Decimal("19068.27047861")
    assert order.gross_value_executed == Decimal("19068.27047861")
    assert order.quantity_executed == order.orig_quantity == Decimal(1)
    assert order.price == 0


def test_get_trades_history() -> None:
    """Trades decode fees, values, direction and maker/taker names."""
    first, second = _wire.structure_list(payload("get_trades_history.json"), Trade)
    assert (first.trade_id, first.execution_id, first.order_id) == (14476351, 16916567, 2543565231)
    assert first.side is Side.SELL
    assert first.order_type is OrderType.MARKET
    assert first.quantity == Decimal("0.123")
    assert first.price == Decimal("19069.31")
    assert first.value == Decimal("2345.52513")
    assert first.fee == Decimal("1.172762565")
    assert first.fee_product_id == 8
    assert first.direction is TradeDirection.NO_CHANGE
    assert first.maker_taker is MakerTaker.TAKER
    assert first.trade_time_ms == 1607565031569
    assert first.trade_time == 637431618315686826
    assert second.client_order_id == 77
    assert second.direction is TradeDirection.DOWN_TICK
    assert second.maker_taker is MakerTaker.MAKER
    assert second.remaining_quantity == Decimal("0.25")
    assert second.value == Decimal(9500)


def test_authenticate_user_camel_case() -> None:
    """The documented camelCase answer decodes; the token is read apart, never a field."""
    data = payload("authenticate_user_camel.json")
    result = _wire.structure(data, AuthResult)
    assert result.authenticated is True
    assert result.user == UserInfo(
        user_id=96,
        user_name="alice",
        email="alice@example.com",
        email_verified=True,
        account_id=104,
        oms_id=1,
        use_2fa=False,
    )
    assert result.requires_2fa is False
    assert result.two_fa_type == ""
    assert _wire.session_token(data) == "9c1d4a0e-2f3b-4c5d-8e9f-0a1b2c3d4e5f"
    assert "9c1d4a0e" not in repr(result)
    assert _wire.api_error("AuthenticateUser", 200, data) is None


def test_authenticate_user_pascal_case() -> None:
    """The PascalCase answer real clients parse decodes the same; nulls stay None."""
    data = payload("authenticate_user_pascal.json")
    result = _wire.structure(data, AuthResult)
    assert result.authenticated is True
    assert result.user is not None
    assert (result.user.user_id, result.user.account_id, result.user.use_2fa) == (
        57765,
        57922,
        True,
    )
    assert result.two_fa_type is None
    assert result.errormsg is None
    assert _wire.session_token(data) == "4a2a5857-c4e5-4fac-b09e-2c4c30b591a0"


def test_authenticate_2fa_answer() -> None:
    """Authenticate2FA's answer has a top-level UserId and a token."""
    data = payload("authenticate_2fa.json")
    result = _wire.structure(data, AuthResult)
    assert (result.authenticated, result.user_id, result.user) == (True, 57765, None)
    assert _wire.session_token(data) == "4a2a5857-c4e5-4fac-b09e-2c4c30b591a0"


def test_authenticate_requires_2fa_is_not_an_error() -> None:
    """A 2FA challenge is an answer for the client to continue, not an error."""
    data = payload("authenticate_user_2fa_required.json")
    assert _wire.api_error("AuthenticateUser", 200, data) is None
    result = _wire.structure(data, AuthResult)
    assert (result.authenticated, result.requires_2fa, result.two_fa_type) == (
        False,
        True,
        "Google",
    )
    assert _wire.session_token(data) is None


def test_get_user_info_and_accounts() -> None:
    """GetUserInfo decodes camelCase keys; GetUserAccounts ids come as int or string."""
    info = _wire.structure(payload("get_user_info.json"), UserInfo)
    assert (info.user_id, info.account_id, info.email_verified, info.locked) == (
        96,
        104,
        True,
        False,
    )
    assert _wire.structure_list(payload("get_user_accounts.json"), int) == [449, 450]


def test_generic_results_ping_and_send_order_accepted() -> None:
    """LogOut, Ping and an accepted SendOrder decode and are not errors."""
    logout = payload("logout.json")
    assert _wire.structure(logout, GenericResult) == GenericResult(result=True, errorcode=0)
    assert _wire.api_error("LogOut", 200, logout) is None
    assert _wire.structure(payload("ping.json"), Pong).msg == "PONG"
    accepted = payload("send_order_accepted.json")
    assert _wire.api_error("SendOrder", 200, accepted) is None
    result = _wire.structure(accepted, SendOrderResult)
    assert (result.status, result.order_id, result.errormsg) == ("Accepted", 2543565235, "")


def test_create_deposit_ticket_answer() -> None:
    """CreateDepositTicket's answer exposes the request code."""
    created = _wire.structure(payload("create_deposit_ticket.json"), DepositTicketCreated)
    assert created.success is True
    assert created.request_code == "866f21fe-3461-41d1-91aa-5689bc38503f"


def test_deposit_ticket_int_status_and_object_info() -> None:
    """A deposit ticket with an int Status; an object depositInfo becomes exact JSON text."""
    ticket = _wire.structure(payload("deposit_ticket_int_status.json"), DepositTicket)
    assert ticket.status is DepositStatus.FULLY_PROCESSED
    assert ticket.status.is_success
    assert ticket.ticket_number == 100000002
    assert ticket.amount == Decimal(150000)
    assert ticket.fee_amt == 0
    assert ticket.asset_name == "COP"
    assert ticket.last_update_time_stamp == "2024-01-05T10:05:00.000Z"
    assert ticket.deposit_info == '{"Full Name":"Alice","Bank":"Bancolombia","Reference":12345.5}'
    assert _wire.loads(ticket.deposit_info)["Reference"] == Decimal("12345.5")


def test_deposit_ticket_name_status_and_string_info() -> None:
    """A deposit ticket with a status name, string numbers and JSON-text depositInfo."""
    ticket = _wire.structure(payload("deposit_ticket_name_status.json"), DepositTicket)
    assert ticket.status is DepositStatus.AML_PROCESSING
    assert not ticket.status.is_final
    assert ticket.amount == Decimal("250.5")
    assert ticket.fee_amt == Decimal("0.25")
    assert ticket.deposit_info == '{"TXId":"0xabc"}'
    assert ticket.reject_reason is None  # "RejectReason": null


def test_withdraw_ticket_int_status() -> None:
    """A withdraw ticket with Status 8 (Pending2Fa) and a JSON-string template form."""
    ticket = _wire.structure(payload("withdraw_ticket_int_status.json"), WithdrawTicket)
    assert ticket.status is WithdrawStatus.PENDING_2FA
    assert ticket.amount == Decimal(100)
    assert ticket.fee_amt == Decimal("1.06")
    assert ticket.template_form_type == "ToExternalEthereumAddress"
    assert ticket.form["ExternalAddress"] == "0x8A27564b"
    assert ticket.last_update_timestamp == "2024-01-07T09:00:01.000Z"


def test_withdraw_ticket_name_status_and_object_form() -> None:
    """A withdraw ticket with a status name and an object TemplateForm."""
    ticket = _wire.structure(payload("withdraw_ticket_name_status.json"), WithdrawTicket)
    assert ticket.status is WithdrawStatus.FULLY_PROCESSED
    assert ticket.status.is_success
    assert ticket.amount == Decimal(400000)
    assert ticket.form == {
        "TemplateType": "Standard",
        "ExternalAddress": "0xdef",
        "Amount": 400000.5,
    }
    assert '"Amount":400000.5' in ticket.template_form


def test_get_deposit_info_json_string_list() -> None:
    """DepositInfo's JSON-string list of addresses becomes a tuple of str."""
    data = payload("get_deposit_info.json")
    assert _wire.api_error("GetDepositInfo", 200, data) is None
    info = _wire.structure(data, DepositInfo)
    assert (info.account_id, info.asset_id, info.provider_id, info.asset_manager_id) == (
        57922,
        16,
        23,
        1,
    )
    assert info.deposit_info == (
        "0x8A27564b00000000000000000000000000a210",
        "0x8A27564b00000000000000000000000000b321?memo=42",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["a", "b"], ("a", "b")), ("0xabc", ("0xabc",)), ("", ()), (None, ()), ("[]", ())],
)
def test_deposit_info_list_forms(value: Any, expected: tuple[str, ...]) -> None:
    """DepositInfo accepts a list, JSON text, a bare address, an empty string or null."""
    data = {"AccountId": 1, "AssetId": 2, "DepositInfo": value}
    assert _wire.structure(data, DepositInfo).deposit_info == expected


def test_withdraw_template_types_strings() -> None:
    """Old venues list template types as strings (and say result false on success)."""
    data = payload("get_withdraw_template_types_strings.json")
    assert _wire.api_error("GetWithdrawTemplateTypes", 200, data) is None
    types = _wire.structure_list(data["TemplateTypes"], WithdrawTemplateType)
    assert types == [WithdrawTemplateType(template_name="Standard")]


def test_withdraw_template_types_objects() -> None:
    """Newer venues list objects with string or int provider ids."""
    data = payload("get_withdraw_template_types_objects.json")
    assert _wire.api_error("GetWithdrawTemplateTypes", 200, data) is None
    first, second = _wire.structure_list(data["TemplateTypes"], WithdrawTemplateType)
    assert first == WithdrawTemplateType(
        template_name="ToExternalBitcoinAddress",
        account_provider_id=14,
        account_provider_name="BitgoRPC-BTC",
    )
    assert (second.template_name, second.account_provider_id) == ("TetherRPCWithdraw", 15)


def test_withdraw_template_from_json_string() -> None:
    """GetWithdrawTemplate: the type and field names come from the Template JSON text."""
    template = _wire.structure(payload("get_withdraw_template.json"), WithdrawTemplate)
    assert template.template_type == "ToExternalBitcoinAddress"
    assert template.fields == ("Comment", "ExternalAddress")
    assert _wire.loads(template.template)["ExternalAddress"] == ""


def test_withdraw_template_from_object() -> None:
    """A Template sent as an object works the same way."""
    data = {"Template": {"templateType": "Standard", "ExternalAddress": "", "Memo": ""}}
    template = _wire.structure(data, WithdrawTemplate)
    assert (template.template_type, template.fields) == ("Standard", ("ExternalAddress", "Memo"))
    with pytest.raises(errors.DecodeError, match="WithdrawTemplate"):
        _wire.structure({"Template": "[1]"}, WithdrawTemplate)


def test_get_withdraw_fee() -> None:
    """GetWithdrawFee decodes the fee and ticket amount exactly."""
    fee = _wire.structure(payload("get_withdraw_fee.json"), WithdrawFee)
    assert fee.fee_amount == Decimal("1.06")
    assert fee.ticket_amount == Decimal(100)


# ------------------------------------------------------------------- converter policy


@pytest.mark.parametrize("key", ["InstrumentId", "instrumentId", "instrument_id", "INSTRUMENTID"])
def test_keys_match_case_and_underscore_insensitively(key: str) -> None:
    """Every spelling of a key fills the same field."""
    assert _wire.structure({key: 5}, Level1).instrument_id == 5


def test_special_spellings_and_unknown_keys() -> None:
    """OMSId, Rolling24HrVolume and Requires2FA map to their fields; unknown keys are ignored."""
    level1 = _wire.structure(
        {"OMSId": 2, "InstrumentId": 1, "Rolling24HrVolume": "3.5", "Mystery": {"x": [1]}}, Level1
    )
    assert (level1.oms_id, level1.rolling_24hr_volume) == (2, Decimal("3.5"))
    assert _wire.structure({"Authenticated": True, "Requires2FA": "true"}, AuthResult).requires_2fa


def test_canonical_key_beats_alias_in_any_order() -> None:
    """When both InstrumentId and Instrument are sent, InstrumentId wins."""
    base = payload("order_working.json")
    after = {**base, "InstrumentId": 9}
    before = {"InstrumentId": 9, **base}
    assert _wire.structure(after, Order).instrument_id == 9
    assert _wire.structure(before, Order).instrument_id == 9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, OrderState.FULLY_EXECUTED),
        ("5", OrderState.FULLY_EXECUTED),
        ("FullyExecuted", OrderState.FULLY_EXECUTED),
        ("fully_executed", OrderState.FULLY_EXECUTED),
        ("FULLY_EXECUTED", OrderState.FULLY_EXECUTED),
        ("Accepted", OrderState.ACCEPTED),
        ("SomethingNew", OrderState.UNKNOWN),
        (42, OrderState.UNKNOWN),
        (Decimal("1"), OrderState.WORKING),
    ],
)
def test_enums_from_int_numeric_string_or_name(value: Any, expected: OrderState) -> None:
    """Enums read ints, numeric strings and names; unknown values become UNKNOWN."""
    assert _wire.structure(value, OrderState) is expected


def test_a_padded_enum_spelling_is_read_but_never_kept() -> None:
    """A name padded with a megabyte of underscores reads as the member it spells, but the
    spelling cache (process-wide) keeps only short texts: a hostile server cannot pin
    memory through it."""
    from kiiex_async._wire_scalars import _ENUM_MEMBERS

    padded = "Fully" + "_" * 1_000_000 + "Executed"
    assert _wire.structure(padded, OrderState) is OrderState.FULLY_EXECUTED
    assert padded not in _ENUM_MEMBERS[OrderState]
    assert _wire.structure("fully executed", OrderState) is OrderState.FULLY_EXECUTED
    assert "fully executed" in _ENUM_MEMBERS[OrderState]


def test_a_huge_unknown_key_is_ignored_and_never_kept() -> None:
    """An object with a key of a megabyte still reads; neither the key cache nor the key-set
    plans of the model (process-wide) keep it."""
    from kiiex_async._wire_structure import _STRUCTURERS

    huge = "X" * 1_000_000
    level1 = _wire.structure({"InstrumentId": 1, "BestBid": 4, huge: 1}, Level1)
    assert (level1.instrument_id, level1.best_bid) == (1, Decimal(4))
    reader = _STRUCTURERS[Level1].__self__  # type: ignore[attr-defined]
    assert huge not in reader.keys
    assert not any(huge in shape for shape in reader.shapes)
    assert _wire.structure({"InstrumentId": 2, "Short": 1}, Level1).instrument_id == 2
    assert "Short" in reader.keys


def test_enum_without_unknown_member_refuses_unknown_values() -> None:
    """An enum with no UNKNOWN member refuses values it does not know."""
    assert _wire.structure("Pending2Fa", WithdrawStatus) is WithdrawStatus.PENDING_2FA
    assert _wire.structure("SystemCanceled_NoMoreMarket", ChangeReason) is (
        ChangeReason.SYSTEM_CANCELED_NO_MORE_MARKET
    )
    with pytest.raises(errors.DecodeError, match="unknown WithdrawStatus value 'Exploded'"):
        _wire.structure("Exploded", WithdrawStatus)
    with pytest.raises(errors.DecodeError, match="expected a WithdrawStatus"):
        _wire.structure(True, WithdrawStatus)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), ("7", 7), (" 7 ", 7), (Decimal("7.000"), 7), ("7.0", 7)],
)
def test_int_from_numbers_and_numeric_strings(value: Any, expected: int) -> None:
    """int fields accept ints, numeric strings and integral decimals."""
    assert _wire.structure(value, int) == expected


@pytest.mark.parametrize("value", [True, "seven", Decimal("7.5"), None, [7]])
def test_int_refuses_other_values(value: Any) -> None:
    """int fields refuse bools, words, fractions, null and lists."""
    with pytest.raises(errors.DecodeError, match="int: expected an integer"):
        _wire.structure(value, int)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), ("False", False), (0, False), (1, True)],
)
def test_bool_from_bool_or_text(value: Any, expected: bool) -> None:
    """bool fields accept true/false in JSON or text form."""
    assert _wire.structure(value, bool) is expected


def test_bool_refuses_other_values() -> None:
    """bool fields refuse other text and numbers."""
    for value in ("yes", 2, None):
        with pytest.raises(errors.DecodeError, match="expected a bool"):
            _wire.structure(value, bool)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1.5"), Decimal("1.5")),
        (3, Decimal(3)),
        ("0.0000000100000000000000000000", Decimal("1E-8")),
        (" 2.50 ", Decimal("2.5")),
    ],
)
def test_decimal_from_numbers_and_numeric_strings(value: Any, expected: Decimal) -> None:
    """Decimal fields accept decimals, ints and numeric strings, exactly."""
    result = _wire.structure(value, Decimal)
    assert type(result) is Decimal
    assert result == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.1, "float"),
        ("abc", "non-numeric"),
        ("NaN", "finite"),
        (Decimal("Infinity"), "finite"),
        (True, "bool"),
        (None, "null"),
    ],
)
def test_decimal_refuses_floats_and_garbage(value: Any, reason: str) -> None:
    """Decimal fields never take a float, NaN, a bool, null or non-numeric text."""
    with pytest.raises(errors.DecodeError, match=reason):
        _wire.structure(value, Decimal)


def test_str_fields_take_null_and_numbers() -> None:
    """A null str field becomes "" and a number its text; str | None keeps None."""
    product = _wire.structure({"ProductId": 1, "Product": "X", "ProductFullName": None}, Product)
    assert product.product_full_name == ""
    instrument = _wire.structure(
        {
            "InstrumentId": 1,
            "Symbol": "AB",
            "Product1": 1,
            "Product1Symbol": "A",
            "Product2": 2,
            "Product2Symbol": "B",
            "InstrumentType": 1,
        },
        Instrument,
    )
    assert instrument.instrument_type == "1"
    assert _wire.structure({"result": True, "detail": None}, GenericResult).detail is None


def test_missing_required_field_names_class_and_fields() -> None:
    """A missing required field is a DecodeError naming the class and the fields."""
    data = payload("order_working.json")
    del data["OrderId"], data["AvgPrice"]
    with pytest.raises(
        errors.DecodeError, match=r"^Order: missing required field\(s\) order_id, avg_price$"
    ):
        _wire.structure(data, Order)


def test_a_missing_field_is_caught_whatever_object_came_before() -> None:
    """Plans are remembered per key set: an object missing a required field fails after
    a complete one, twice in a row, and so does an empty object (first or not)."""
    complete = payload("order_working.json")
    partial = dict(complete)
    del partial["OrderId"]
    rows = [complete, partial]
    with pytest.raises(errors.DecodeError, match=r"^item 1: Order: missing required .*order_id"):
        _wire.structure_list(rows, Order)
    for data in (partial, partial, {}, complete, {}):
        if data is complete:
            assert _wire.structure(data, Order).order_id == complete["OrderId"]
            continue
        with pytest.raises(errors.DecodeError, match="missing required"):
            _wire.structure(data, Order)


def test_wrong_type_names_class_and_field_without_echoing_text() -> None:
    """A wrong value names Class.field and its type, never the text (it may be secret)."""
    with pytest.raises(errors.DecodeError) as info:
        _wire.structure({"Authenticated": "s3cr3t-token"}, AuthResult)
    assert (
        str(info.value)
        == "AuthResult.authenticated: expected a bool, got a str that is not true/false"
    )
    with pytest.raises(errors.DecodeError, match=r"AuthResult\.user: UserInfo\.user_id: "):
        _wire.structure({"Authenticated": True, "User": {"UserId": "x"}}, AuthResult)
    with pytest.raises(errors.DecodeError, match="Position: expected a JSON object, got list"):
        _wire.structure([1], Position)


def test_structure_list_accepts_json_text_and_names_the_bad_item() -> None:
    """structure_list takes a list or JSON text of one; errors name the item index."""
    rows = '[{"msg": "PONG"}, {"msg": "PING"}]'
    assert [p.msg for p in _wire.structure_list(rows, Pong)] == ["PONG", "PING"]
    with pytest.raises(errors.DecodeError, match=r"item 1: Pong\.msg: expected a str"):
        _wire.structure_list([{"msg": "a"}, {"msg": [1]}], Pong)
    with pytest.raises(errors.DecodeError, match="expected a JSON array of Pong, got dict"):
        _wire.structure_list({"msg": "a"}, Pong)


def test_last_spelling_of_a_key_wins() -> None:
    """Two spellings of one key behave like a dict: the later one wins."""
    assert _wire.structure({"InstrumentId": 1, "instrument_id": 2}, Level1).instrument_id == 2
    assert _wire.structure({"instrument_id": 2, "InstrumentId": 1}, Level1).instrument_id == 1


def test_many_shapes_and_keys_still_decode() -> None:
    """Past the compiled-shape and key caches, objects decode the same (slow path)."""
    results = [
        _wire.structure({"msg": f"m{i}", f"Extra{i}": i, "OMSId": 1}, Pong) for i in range(1500)
    ]
    assert [r.msg for r in results] == [f"m{i}" for i in range(1500)]
    with pytest.raises(errors.DecodeError, match=r"^Pong\.msg: expected a str, got list$"):
        _wire.structure({"msg": [1], "Extra1499": 0}, Pong)


def test_non_dict_mappings_are_accepted() -> None:
    """Any Mapping works, not only dict."""
    view = MappingProxyType({"ProductId": "3", "Product": "COPM"})
    assert _wire.structure(view, Product).product_id == 3


def test_structure_passes_built_models_through() -> None:
    """Structuring an instance that is already a model returns it unchanged."""
    pong = Pong()
    assert _wire.structure(pong, Pong) is pong


@attrs.frozen
class _Validated:
    """A model whose validator must run when it is structured."""

    amount: Decimal = attrs.field(validator=attrs.validators.gt(Decimal(0)))


@attrs.frozen
class _PostInit:
    """A model whose __attrs_post_init__ must run when it is structured."""

    value: int
    label: str = attrs.field(default="", kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@attrs.frozen(cache_hash=True)
class _CachedHash:
    """A model whose __init__ also primes a hash cache slot."""

    value: int


def test_structure_equals_the_constructor_with_defaults_for_absent_keys() -> None:
    """A partial object gets the model's defaults, exactly as the constructor gives them."""
    assert _wire.structure({"InstrumentId": 3, "BestBid": 5}, Level1) == Level1(
        instrument_id=3, best_bid=Decimal(5)
    )
    full = payload("get_level1.json")
    assert _wire.structure(full, Level1) == Level1(
        **attrs.asdict(_wire.structure(full, Level1), recurse=False)
    )


def test_structure_runs_validators_and_post_init_hooks() -> None:
    """Models with a validator, __attrs_post_init__ or cached hash go through __init__."""
    assert _wire.structure({"Amount": 2}, _Validated).amount == Decimal(2)
    with pytest.raises(ValueError, match="amount"):
        _wire.structure({"Amount": -1}, _Validated)
    assert _wire.structure({"Value": 1, "Label": "x"}, _PostInit) == _PostInit(1, label="x")
    with pytest.raises(ValueError, match="negative"):
        _wire.structure({"Value": -1}, _PostInit)
    cached = _wire.structure({"Value": 7}, _CachedHash)
    assert hash(cached) == hash(_CachedHash(7))


def test_converter_handles_containers_with_the_same_policy() -> None:
    """The shared converter structures containers of models and scalars."""
    orders = _wire.converter.structure([payload("order_working.json")], list[Order])
    assert orders[0].order_state is OrderState.WORKING
    amounts = _wire.converter.structure({"a": "1.5", "b": 2}, dict[str, Decimal])
    assert amounts == {"a": Decimal("1.5"), "b": Decimal(2)}
    assert _wire.structure({"a": "1.5"}, dict[str, Decimal]) == {"a": Decimal("1.5")}
    with pytest.raises(errors.DecodeError):
        _wire.structure({"a": 0.5}, dict[str, Decimal])


# --------------------------------------------------------------------------- api_error


@pytest.mark.parametrize(
    ("name", "method", "cls", "message"),
    [
        (
            "error_not_authorized.json",
            "GetOpenOrders",
            errors.AuthenticationError,
            "GetOpenOrders: Not Authorized [errorcode 20]",
        ),
        (
            "error_invalid_request.json",
            "GetLevel1",
            errors.RejectedError,
            "GetLevel1: Invalid InstrumentId: 10000 [errorcode 100]",
        ),
        (
            "error_operation_failed.json",
            "CancelOrder",
            errors.RejectedError,
            "CancelOrder: Operation Failed (Order is not in a cancelable state) [errorcode 101]",
        ),
        (
            "error_server.json",
            "GetInstruments",
            errors.ServerError,
            "GetInstruments: Server Error [errorcode 102]",
        ),
        (
            "error_not_found.json",
            "GetOrderStatus",
            errors.NotFoundError,
            "GetOrderStatus: Resource Not Found [errorcode 104]",
        ),
        (
            "error_not_supported.json",
            "CancelOrder",
            errors.RejectedError,
            "CancelOrder: Operation Not Supported [errorcode 106]",
        ),
        (
            "send_order_rejected.json",
            "SendOrder",
            errors.InsufficientFundsError,
            "SendOrder: Not_Enough_Funds [errorcode 101]",
        ),
        (
            "create_withdraw_ticket_insufficient.json",
            "CreateWithdrawTicket",
            errors.InsufficientFundsError,
            "CreateWithdrawTicket: Invalid Request (Insufficient Balance) [errorcode 100]",
        ),
        (
            "authenticate_user_failed.json",
            "AuthenticateUser",
            errors.AuthenticationError,
            "AuthenticateUser: Invalid username or password",
        ),
    ],
)
def test_api_error_maps_each_documented_shape(
    name: str, method: str, cls: type[errors.ApiError], message: str
) -> None:
    """Each documented error body maps to its class with the standard message."""
    body = payload(name)
    error = _wire.api_error(method, 200, body)
    assert type(error) is cls
    assert str(error) == message
    assert error.method == method
    assert error.status == 200
    assert error.errormsg == next(v for k, v in body.items() if k.lower() == "errormsg")


def test_api_error_keeps_alphapoint_fields() -> None:
    """errorcode, errormsg and detail are kept as sent ("" detail becomes None)."""
    error = _wire.api_error("CancelOrder", 200, payload("error_operation_failed.json"))
    assert error is not None
    assert (error.errorcode, error.errormsg, error.detail) == (
        101,
        "Operation Failed",
        "Order is not in a cancelable state",
    )
    supported = _wire.api_error("CancelOrder", 200, payload("error_not_supported.json"))
    assert supported is not None
    assert supported.detail is None


def test_operation_in_process_is_a_busy_server_error() -> None:
    """errorcode 107 "Operation In Process" is OperationInProcessError (a ServerError)."""
    busy = _wire.api_error("CancelOrder", 200, payload("error_operation_in_process.json"))
    assert type(busy) is errors.OperationInProcessError
    assert isinstance(busy, errors.ServerError)
    assert (busy.errorcode, busy.method) == (107, "CancelOrder")


def test_successes_are_not_errors() -> None:
    """Generic successes, lists and non-dicts are not errors."""
    assert _wire.api_error("CancelOrder", 200, payload("generic_success.json")) is None
    assert _wire.api_error("GetInstruments", 200, payload("get_instruments.json")) is None
    assert (
        _wire.api_error("GetDepositTicket", 200, payload("deposit_ticket_int_status.json")) is None
    )
    assert _wire.api_error("Ping", 200, None) is None
    assert _wire.api_error("Ping", 200, "PONG") is None


def test_keys_seen_in_a_success_still_map_errors() -> None:
    """A key set that once held a success still maps to an error when the values say so."""
    for _ in range(3):
        assert _wire.api_error("CancelOrder", 200, {"rEsUlT": True, "ErrorCode": 0}) is None
    error = _wire.api_error("CancelOrder", 200, {"rEsUlT": False, "ErrorCode": 101})
    assert isinstance(error, errors.RejectedError)
    plain = {"InstrumentId": 1, "BestBid": 2}
    assert _wire.api_error("GetLevel1", 200, plain) is None
    assert _wire.api_error("GetLevel1", 200, plain) is None
    assert isinstance(_wire.api_error("GetLevel1", 500, plain), errors.ServerError)


def test_ticket_named_rejected_status_is_not_an_error() -> None:
    """A ticket whose Status is the name "Rejected" is data, not a SendOrder rejection."""
    ticket = {**payload("deposit_ticket_name_status.json"), "Status": "Rejected"}
    assert _wire.api_error("GetDepositTicket", 200, ticket) is None
    assert _wire.structure(ticket, DepositTicket).status is DepositStatus.REJECTED


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (429, None, errors.RateLimitedError, "GetLevel1: HTTP 429 Too Many Requests"),
        (401, None, errors.AuthenticationError, "GetLevel1: HTTP 401 Unauthorized"),
        (
            403,
            {"message": "Forbidden"},
            errors.AuthenticationError,
            "GetLevel1: Forbidden [HTTP 403]",
        ),
        (500, None, errors.ServerError, "GetLevel1: HTTP 500 Internal Server Error"),
        (
            502,
            "<html><title>502 Bad Gateway</title></html>",
            errors.ServerError,
            "GetLevel1: HTTP 502 Bad Gateway",
        ),
        (
            404,
            {"result": False, "errormsg": "Resource Not Found", "errorcode": 104},
            errors.NotFoundError,
            "GetLevel1: Resource Not Found [errorcode 104] [HTTP 404]",
        ),
        (
            400,
            {"result": False, "errormsg": "Not_Enough_Funds", "errorcode": 101},
            errors.InsufficientFundsError,
            "GetLevel1: Not_Enough_Funds [errorcode 101] [HTTP 400]",
        ),
        (400, {"message": "bad"}, errors.ApiError, "GetLevel1: bad [HTTP 400]"),
        (418, None, errors.ApiError, "GetLevel1: HTTP 418 I'm a Teapot"),
    ],
)
def test_api_error_http_statuses(
    status: int, body: Any, cls: type[errors.ApiError], message: str
) -> None:
    """HTTP 429, 401/403, 5xx and 404 decide the class; other 4xx use the body."""
    error = _wire.api_error("GetLevel1", status, body)
    assert type(error) is cls
    assert str(error) == message
    assert error.status == status


def test_api_error_rate_limited_leaves_retry_after_to_transport() -> None:
    """A 429 error starts without retry_after; the transport fills it from the header."""
    error = _wire.api_error("GetLevel1", 429, {"errormsg": "slow down"})
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after is None
    assert str(error) == "GetLevel1: slow down [HTTP 429]"


def test_api_error_auth_methods_and_locked_accounts() -> None:
    """A 400 on an auth method is an AuthenticationError; a locked account says so."""
    error = _wire.api_error("AuthenticateUser", 400, {"message": "Invalid request format"})
    assert isinstance(error, errors.AuthenticationError)
    locked = _wire.api_error("AuthenticateUser", 200, {"Authenticated": False, "Locked": True})
    assert isinstance(locked, errors.AuthenticationError)
    assert str(locked) == "AuthenticateUser: authentication failed (the account is locked)"


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (
            {"result": False, "errormsg": "Not Authorized", "statuscode": 32},
            errors.AuthenticationError,
        ),
        (
            {"result": False, "errormsg": "Asset_Manager_Not_Found", "statuscode": 33},
            errors.NotFoundError,
        ),
        ({"result": False, "errormsg": "weird", "errorcode": 999}, errors.ApiError),
        (
            {"result": False, "errormsg": "This endpoint requires 2FACode along with the payload"},
            errors.AuthenticationError,
        ),
        ({"Result": "false", "ErrorCode": "102", "ErrorMsg": "Server Error"}, errors.ServerError),
    ],
)
def test_api_error_other_shapes(body: dict[str, Any], cls: type[errors.ApiError]) -> None:
    """Ticket statuscodes, unknown codes, 2FA demands and string-typed fields map sensibly."""
    assert type(_wire.api_error("CreateWithdrawTicket", 200, body)) is cls


def test_session_token_reading() -> None:
    """session_token reads any casing and ignores empty or non-string values."""
    assert _wire.session_token({"SESSIONTOKEN": "abc"}) == "abc"
    assert _wire.session_token({"session_token": "abc"}) == "abc"
    assert _wire.session_token({"SessionToken": ""}) is None
    assert _wire.session_token({"SessionToken": 5}) is None
    assert _wire.session_token([{"SessionToken": "abc"}]) is None
    assert _wire.session_token({"Authenticated": True}) is None


# ------------------------------------------------------------------- unreadable answers


def test_unreadable_answer_is_structured_once_and_mapped_by_read_or_write() -> None:
    """A failing conversion runs once: a read gets DecodeError, a write UnknownOutcomeError."""
    calls: list[Any] = []

    def convert(data: Any) -> Order:
        calls.append(data)
        return _wire.structure(data, Order)

    bad = {"OrderId": "x", "OrderState": 1, "QuantityExecuted": 0, "AvgPrice": 0}
    with pytest.raises(errors.DecodeError, match=r"^GetOrderStatus: Order\.order_id: ") as read:
        read_answer("GetOrderStatus", convert, bad, write=False)
    assert read.value.method == "GetOrderStatus"
    with pytest.raises(
        errors.UnknownOutcomeError, match=r"^SendOrder: .*outcome is unknown"
    ) as info:
        read_answer("SendOrder", convert, bad, write=True)
    assert isinstance(info.value.__cause__, errors.DecodeError)
    assert calls == [bad, bad]


def test_unreadable_login_answer_hides_its_details() -> None:
    """A login answer that breaks a converter is named, never quoted (it holds the token)."""

    def convert() -> Any:
        raise TypeError("token 4a2a5857 in the way")

    with pytest.raises(errors.DecodeError) as info:
        read_answer("AuthenticateUser", convert, write=False)
    assert str(info.value) == "AuthenticateUser: unexpected answer shape"
    with pytest.raises(errors.DecodeError, match=r"GetLevel1: .*\(TypeError: token"):
        read_answer("GetLevel1", convert, write=False)


@attrs.frozen
class _FactoryGap:
    """A model whose absent Factory default sits before a present field."""

    first: int
    items: tuple[int, ...] = attrs.Factory(tuple)
    last: Decimal | None = None


def test_absent_factory_default_before_a_present_field_is_left_to_init() -> None:
    """A Factory default the object lacks is built by __init__; later fields still fill."""
    built = _wire.structure({"First": "1", "Last": 2}, _FactoryGap)
    assert built == _FactoryGap(1, last=Decimal(2))
    assert _wire.structure({"first": 1, "items": ["3"]}, _FactoryGap).items == (3,)
    with pytest.raises(errors.DecodeError, match=r"^_FactoryGap\.last: expected a decimal"):
        _wire.structure({"first": 1, "last": "x"}, _FactoryGap)


def test_refusal_while_reading_a_write_answer_passes_through() -> None:
    """A refusal raised while reading a write's answer is not an unknown outcome."""

    def convert() -> Any:
        raise errors.RejectedError("SendOrder: rejected", method="SendOrder")

    with pytest.raises(errors.RejectedError) as info:
        read_answer("SendOrder", convert, write=True)
    assert info.value.__cause__ is None
