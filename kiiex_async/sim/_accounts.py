"""The base room of the simulated exchange: users, accounts, balances and the journal.

Owns the configuration, the change counter (``version``) and the change observers that
every other room reports to, the products and markets looked up by id or symbol, the
users (password and API-key signature checks), each account's balances and the journal
of every change of a user account's amounts (``GetAccountTransactions``).

:class:`Accounts` is a mixin of :class:`~._exchange.Exchange`, which sets the state up;
the attributes are declared here for the rooms built on it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .. import auth
from ._config import DemoUser, ProductSpec, SimConfig
from ._history import Transaction
from ._records import ZERO, Balance, ExchangeError, Market

__all__ = ["Accounts"]

_FIRST_TRANSACTION = 9_000_001


class Accounts:
    """Users, accounts and balances (see the module doc)."""

    config: SimConfig
    products: dict[int, ProductSpec]
    _products_by_symbol: dict[str, ProductSpec]
    users: dict[int, DemoUser]
    _users_by_key: dict[str, DemoUser]
    _users_by_name: dict[str, DemoUser]
    _users_by_account: dict[int, DemoUser]
    mm_account_id: int
    markets: dict[int, Market]
    balances: dict[tuple[int, int], Balance]
    fees_collected: dict[int, Decimal]
    #: Every change of a user account's amounts, oldest first (``GetAccountTransactions``).
    journal: list[Transaction]
    #: Bumped by every change (the server persists when it moved).
    version: int
    #: Called as ``observer(kind, subject)`` after each change (the WebSocket gateway
    #: listens): ``"book"`` (a Market), ``"order"`` (a user's Order), ``"trade"`` (a
    #: Trade), ``"ticket"`` (a Deposit/WithdrawTicket), ``"cancel_reject"`` (a dict).
    observers: list[Callable[[str, Any], None]]

    def _emit(self, kind: str, subject: Any) -> None:
        for observer in self.observers:
            observer(kind, subject)

    def product(self, key: int | str) -> ProductSpec:
        """A product by id or symbol (``errorcode 100`` if unknown)."""
        found = (
            self._products_by_symbol.get(key.upper())
            if isinstance(key, str)
            else self.products.get(key)
        )
        if found is None:
            raise ExchangeError(100, f"Invalid ProductId: {key}")
        return found

    def market(self, instrument_id: int) -> Market:
        """An instrument's market (``errorcode 100`` ``Invalid InstrumentId`` if unknown)."""
        market = self.markets.get(instrument_id)
        if market is None:
            raise ExchangeError(100, f"Invalid InstrumentId: {instrument_id}")
        return market

    def user_for_account(self, account_id: int) -> DemoUser | None:
        """The user owning ``account_id`` (``None`` for the market maker / unknown)."""
        return self._users_by_account.get(account_id)

    def account_name(self, account_id: int) -> str:
        """Display name of an account."""
        if account_id == self.mm_account_id:
            return "market-maker"
        user = self._users_by_account.get(account_id)
        return user.username if user else str(account_id)

    def user_by_name(self, username: str) -> DemoUser | None:
        """A user by username (case-insensitive) or e-mail."""
        user = self._users_by_name.get(username.lower())
        if user is None:
            user = next((u for u in self.users.values() if u.email == username), None)
        return user

    def check_password(self, username: str, password: str) -> DemoUser | None:
        """The user if ``username``/``password`` match."""
        user = self.user_by_name(username)
        if user is None or not _safe_equal(user.password, password):
            return None
        return user

    def check_signature(
        self, *, api_key: str, user_id: str, nonce: str, signature: str
    ) -> DemoUser | None:
        """The user if the AlphaPoint signature is valid (any nonce is accepted)."""
        user = self._users_by_key.get(api_key)
        if user is None or str(user.user_id) != str(user_id).strip() or not nonce:
            return None
        ok = auth.verify_signature(
            api_secret=user.api_secret,
            nonce=nonce,
            user_id=user_id.strip(),
            api_key=api_key,
            signature=signature,
        )
        return user if ok else None

    def balance(self, account_id: int, product: int | str) -> tuple[Decimal, Decimal]:
        """``(amount, hold)`` of one product in one account."""
        bal = self.balances.get((account_id, self.product(product).product_id))
        return (bal.amount, bal.hold) if bal else (ZERO, ZERO)

    def _open_account(self, user: DemoUser, now_ms: int) -> None:
        for symbol, amount in user.balances.items():
            product = self._products_by_symbol[symbol.upper()]
            self._post(
                user.account_id, product.product_id, amount, "Other", "ManualEntry", 0, now_ms
            )

    def _post(
        self,
        account_id: int,
        product_id: int,
        delta: Decimal,
        kind: str,
        reference: str,
        reference_id: int,
        now_ms: int,
        counterparty: int = 0,
    ) -> None:
        """Change an amount by ``delta`` and journal it (the market maker is not journaled)."""
        bal = self._balance(account_id, product_id)
        bal.amount += delta
        if account_id == self.mm_account_id or not delta:
            return
        self.journal.append(
            Transaction(
                transaction_id=_FIRST_TRANSACTION + len(self.journal),
                account_id=account_id,
                product_id=product_id,
                cr=max(delta, ZERO),
                dr=max(-delta, ZERO),
                balance=bal.amount,
                transaction_type=kind,
                reference_type=reference,
                reference_id=reference_id,
                counterparty=counterparty,
                time_ms=now_ms,
            )
        )

    def _balance(self, account_id: int, product_id: int) -> Balance:
        key = (account_id, product_id)
        bal = self.balances.get(key)
        if bal is None:
            bal = self.balances[key] = Balance()
        return bal

    def notional_rate(self, product_id: int, notional_product_id: int = 1) -> Decimal:
        """Value of one unit of ``product_id`` in ``notional_product_id``, from the mids."""
        if product_id == notional_product_id:
            return Decimal(1)
        for market in self.markets.values():
            spec = market.spec
            if spec.base == product_id and spec.quote == notional_product_id:
                return market.mid
            if spec.quote == product_id and spec.base == notional_product_id:
                return (1 / market.mid).quantize(Decimal("0.00000001"), ROUND_HALF_EVEN)
        return ZERO


def _safe_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
