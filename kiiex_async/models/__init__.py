"""Typed values of the AlphaPoint API: frozen attrs classes and enums, no wire names."""

from .account import AuthResult, GenericResult, Pong, Position, UserInfo
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
from .market import Instrument, L2Entry, L2Snapshot, Level1, Level1Summary, Product
from .orders import Order, SendOrderResult, Trade
from .tickets import (
    DepositInfo,
    DepositTicket,
    DepositTicketCreated,
    WithdrawFee,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

__all__ = [
    "AuthResult",
    "ChangeReason",
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
    "TimeInForce",
    "Trade",
    "TradeDirection",
    "UserInfo",
    "WithdrawFee",
    "WithdrawStatus",
    "WithdrawTemplate",
    "WithdrawTemplateType",
    "WithdrawTicket",
]
