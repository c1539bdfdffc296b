"""KiiexClient end to end against the simulator on 127.0.0.1 (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from kiiex_async import Credentials, errors
from kiiex_async.client import KiiexClient
from kiiex_async.models import OrderState, OrderType, Side, WithdrawStatus
from kiiex_async.sim import DemoUser, Fault, SimConfig, Simulator

#: The ``dialect`` fixture: each simulator test runs once per dialect.
pytest_plugins = ["dialect_support"]


@pytest.fixture
async def sim(dialect: str) -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(seed=1, dialect=dialect)) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[KiiexClient]:
    credentials = Credentials(**sim.credentials_kwargs)
    async with KiiexClient(sim.url, credentials=credentials, rate_limit=None) as kiiex:
        yield kiiex


def _balance(sim: Simulator, symbol: str) -> Decimal:
    amount, _hold = sim.exchange.balance(1, symbol)
    return amount


async def test_quick_start_swap_usdt_to_copm_to_usdc(sim: Simulator, client: KiiexClient) -> None:
    """Sell USDT for COPM, then market-buy USDC by value; fills, fees and balances agree."""
    assert (await client.ping()).msg == "PONG"
    usdt_copm = await client.find_instrument("usdt", "COPM")
    assert usdt_copm.instrument_id == 1
    quote = await client.get_quote(1, side=Side.SELL, base_quantity=Decimal(100))
    assert quote.filled and quote.best_price > 0

    sold = await client.send_order(
        1, Side.SELL, Decimal("100.004"), client_order_id=1001, instrument=usdt_copm
    )
    assert sold.status == "Accepted"
    order = await client.get_order_status(sold.order_id)
    assert order.order_state is OrderState.FULLY_EXECUTED
    # The guide's four-field status names no ClientOrderId; AlphaPoint's full one does.
    assert order.client_order_id == (1001 if sim.config.dialect == "apex" else None)
    trades = await client.get_trades_history(order_id=sold.order_id)
    executed = usdt_copm.quantity_increment * (Decimal("100.004") // usdt_copm.quantity_increment)
    assert sum(t.quantity for t in trades) == executed == order.quantity_executed
    value = sum((t.quantity * t.price for t in trades), Decimal(0))
    assert order.avg_price == value / executed
    fees = [t.fee for t in trades]
    if sim.config.dialect == "guide":
        assert fees == [None] * len(trades)  # the guide's trades state no fee: the ledger does
        journal = await client.get_account_transactions()
        ids = {t.trade_id for t in trades}
        fees = [e.dr for e in journal if e.transaction_type == "Fee" and e.reference_id in ids]
    received = value - sum((f for f in fees if f is not None), Decimal(0))
    positions = {p.product_symbol: p for p in await client.get_account_positions()}
    assert positions["COPM"].amount == received == _balance(sim, "COPM")
    assert positions["USDT"].amount == _balance(sim, "USDT") < Decimal(10000)
    (found,) = await client.get_orders_history(client_order_id=1001)
    assert found.order_id == sold.order_id

    spend = (received / 2).quantize(Decimal("0.01"))
    bought = await client.send_order(2, Side.BUY, value=spend, client_order_id=1002)
    assert (await client.get_order_status(bought.order_id)).order_state.is_final
    assert _balance(sim, "USDC") > Decimal(10000)
    assert _balance(sim, "COPM") >= received - spend
    # The guide's login opens no session: every private call above was signed instead.
    assert len(sim.sessions) == (1 if sim.config.dialect == "apex" else 0)


async def test_limit_order_rests_and_is_cancelled(client: KiiexClient) -> None:
    """A far-away limit order stays WORKING in open orders until cancel_order removes it."""
    placed = await client.send_order(
        3,
        Side.BUY,
        Decimal(5),
        order_type=OrderType.LIMIT,
        limit_price=Decimal("0.5"),
        client_order_id=77,
    )
    (open_order,) = await client.get_open_orders()
    assert (open_order.order_id, open_order.order_state) == (placed.order_id, OrderState.WORKING)
    assert (await client.cancel_order(client_order_id=77)).result is True
    assert await client.get_open_orders() == []
    status = await client.get_order_status(placed.order_id)
    assert status.order_state is OrderState.CANCELED


async def test_insufficient_funds_is_typed_and_nothing_is_held(
    sim: Simulator, client: KiiexClient
) -> None:
    """Selling more than the balance raises InsufficientFundsError; balances are unchanged."""
    with pytest.raises(errors.InsufficientFundsError) as info:
        await client.send_order(1, Side.SELL, Decimal(1_000_000), client_order_id=5)
    assert info.value.method == "SendOrder"
    assert sim.exchange.balance(1, "USDT") == (Decimal(10000), Decimal(0))


async def test_answer_lost_after_the_order_was_applied_is_unknown_outcome(
    sim: Simulator, client: KiiexClient
) -> None:
    """drop_after on SendOrder -> UnknownOutcomeError, exactly one order, found by client id."""
    await client.authenticate()
    sim.faults.inject(Fault("SendOrder", "drop_after", times=1))
    with pytest.raises(errors.UnknownOutcomeError):
        await client.send_order(1, Side.SELL, Decimal(10), client_order_id=4242)
    mine = [o for o in sim.exchange.orders.values() if o.account_id == 1]
    assert len(mine) == 1
    (order,) = await client.get_orders_history(client_order_id=4242)
    assert order.order_state is OrderState.FULLY_EXECUTED


@pytest.mark.parametrize("kind", ["error_after", "malformed_after"])
async def test_5xx_or_garbled_answer_to_a_write_is_unknown_outcome(
    sim: Simulator, client: KiiexClient, kind: str
) -> None:
    """A 5xx or truncated body after CreateWithdrawTicket was applied: unknown, sent once."""
    await client.authenticate()
    sim.faults.inject(Fault("CreateWithdrawTicket", kind, times=1))
    with pytest.raises(errors.UnknownOutcomeError):
        await client.create_withdraw_ticket(
            1, "10", template_type="Standard", template_form={"ExternalAddress": "0xabc"}
        )
    assert len(sim.exchange.withdraw_tickets) == 1


async def test_reads_survive_rate_limits_and_server_errors(
    sim: Simulator, client: KiiexClient
) -> None:
    """A 429 (Retry-After) and a 503 on reads are retried transparently."""
    sim.faults.inject(Fault("GetLevel1", "rate_limit", times=1, retry_after=0.05))
    sim.faults.inject(Fault("GetProducts", "error", times=1, status=503))
    level1 = await client.get_level1(1)
    assert level1.best_bid > 0 and level1.best_offer > level1.best_bid
    symbols = {p.symbol for p in await client.get_products()}
    assert {"USDT", "USDC", "COPM", "COP"} <= symbols


async def test_html_page_on_a_read_is_decode_error(sim: Simulator, client: KiiexClient) -> None:
    """A proxy's HTML page with HTTP 200 surfaces as DecodeError with the status."""
    sim.faults.inject(Fault("GetInstruments", "malformed", times=1))
    with pytest.raises(errors.DecodeError) as info:
        await client.get_instruments()
    assert info.value.status == 200


@pytest.mark.parametrize("dialect", ["apex"])  # the guide dialect opens no session
async def test_expired_sessions_are_renewed_once(sim: Simulator, client: KiiexClient) -> None:
    """After the exchange expires every session, 20 concurrent calls log in again once."""
    await client.authenticate()
    assert sim.expire_sessions() == 1
    results = await asyncio.gather(*(client.get_account_positions() for _ in range(20)))
    assert all(results)
    assert sim.expire_sessions() == 1  # one new session, not twenty


async def test_withdraw_and_deposit_tickets(sim: Simulator, client: KiiexClient) -> None:
    """Template types -> template -> fee -> withdraw ticket that advances; a deposit ticket."""
    (template_type,) = await client.get_withdraw_template_types(1)
    template = await client.get_withdraw_template(1, template_type.template_name)
    assert "ExternalAddress" in template.fields
    fee = await client.get_withdraw_fee(1, Decimal(10))
    assert fee.fee_amount >= 0
    result = await client.create_withdraw_ticket(
        1,
        Decimal(10),
        template_type=template.template_type,
        template_form={"ExternalAddress": "0xabc", "Comment": ""},
    )
    assert result.result is True
    (ticket,) = await client.get_withdraw_tickets()
    assert ticket.form["ExternalAddress"] == "0xabc"
    sim.advance(120)
    final = await client.get_withdraw_ticket(ticket_id=ticket.ticket_number)
    assert final.status is WithdrawStatus.FULLY_PROCESSED

    created = await client.create_deposit_ticket(4, "50000", asset_name="COP")
    deposit = await client.get_deposit_ticket(request_code=created.request_code)
    assert deposit.amount == Decimal(50000)
    assert [t.request_code for t in await client.get_deposit_tickets()] == [created.request_code]


async def test_two_factor_login_and_get_reads() -> None:
    """A 2FA user logs in through the provider; reads over GET work; aclose logs out."""
    twofa = DemoUser(
        user_id=7,
        account_id=70,
        username="twofa",
        api_key="twofa-key",
        api_secret="twofa-secret",
        two_fa_code="424242",
    )
    asked: list[str] = []

    async def provider(kind: str) -> str:
        asked.append(kind)
        return "424242"

    credentials = Credentials(username="twofa", password=twofa.password, two_factor=provider)
    async with Simulator(SimConfig(seed=2, users=(DemoUser(), twofa))) as sim:
        async with KiiexClient(
            sim.url, credentials=credentials, read_http_method="GET", rate_limit=None
        ) as client:
            positions = await client.get_account_positions()
            assert asked == ["Google"]
            assert (client.user_id, client.account_id) == (7, 70)
            assert {p.account_id for p in positions} == {70}
            summary = await client.get_level1_summary_min([1, 3])
            assert [s.instrument_id for s in summary] == [1, 3]
        assert sim.expire_sessions() == 0  # aclose logged out
