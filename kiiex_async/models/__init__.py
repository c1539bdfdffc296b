"""Typed values of the AlphaPoint API: frozen attrs classes and enums, no wire names.

The classes are ``@attrs.frozen(slots=False)``: immutable like slotted ones, and built
about twice as fast from an answer, because attrs' ``__init__`` for a class with an
instance dict writes the dict instead of calling ``object.__setattr__`` per field.
"""

from .account import AccountTransaction, AuthResult, GenericResult, Pong, Position, UserInfo
from .enums import (
    ChangeReason,
    DepositStatus,
    MakerTaker,
    OrderState,
    OrderType,
    PegPriceType,
    ProductType,
    SessionStatus,
    Side,
    TimeInForce,
    TradeDirection,
    WithdrawStatus,
)
from .market import Instrument, L2Entry, L2Snapshot, Level1, Level1Summary, Product, TickerBar
from .orders import Order, SendOrderResult, Trade
from .tickets import (
    Deposit,
    DepositInfo,
    DepositTicket,
    DepositTicketCreated,
    Withdraw,
    WithdrawFee,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

__all__ = [
    "AccountTransaction",
    "AuthResult",
    "ChangeReason",
    "Deposit",
    "DepositInfo",
    "DepositStatus",
    "DepositTicket",
    "DepositTicketCreated",
    "GenericResult",
    "Instrument",
    "L2Entry",
    "L2Snapshot",
    "Level1",
    "Level1Summary",
    "MakerTaker",
    "Order",
    "OrderState",
    "OrderType",
    "PegPriceType",
    "Pong",
    "Position",
    "Product",
    "ProductType",
    "SendOrderResult",
    "SessionStatus",
    "Side",
    "TickerBar",
    "TimeInForce",
    "Trade",
    "TradeDirection",
    "UserInfo",
    "Withdraw",
    "WithdrawFee",
    "WithdrawStatus",
    "WithdrawTemplate",
    "WithdrawTemplateType",
    "WithdrawTicket",
]
