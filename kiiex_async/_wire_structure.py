"""Model structuring: decoded JSON into attrs models, through plain code and one converter.

Speed, in plain code (no source is generated): each model class gets a field table built
once; each distinct key set a plan (which keys fill which ``__init__`` arguments, picked
in one C-level call); each pattern of value types within it the few conversions it
needs (a ``Decimal`` field given an int, an enum field given a name...), so an object
costs a handful of C-level passes, one call per value whose JSON type is not its
field's, and the model's own ``__init__`` (models keep an instance dict rather than
slots: attrs' ``__init__`` fills it twice as fast).  ``Decimal`` values are trusted to be finite
and in range: :func:`~kiiex_async._wire_json.loads` never yields others.  A failing value
is named (``Class.field``) by the same pass: nothing is structured twice.

cattrs' own generated structuring functions (``cattrs.gen.make_dict_structure_fn``) were
measured for this and are slower than the whole of this path before any key matching:
they call a Python hook per field and build through ``__init__`` with keyword arguments.
The converter still dispatches containers (``list[Order]``, ``dict[str, Decimal]``) to
these functions through a hook factory.  Part of :mod:`kiiex_async._wire`, which
re-exports the public names.
"""

from __future__ import annotations

import enum
import operator
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import NoneType, UnionType
from typing import Any, TypeVar

import attrs
import cattrs

from . import errors
from ._wire_json import loads
from ._wire_scalars import (
    _ENUM_MEMBERS,
    _INT_DECIMAL,
    _SCALARS,
    _decimal_of_str,
    _enum_converter,
    _Fn,
    _json_text,
    _kind,
    _Members,
    _norm,
    _optional_json_text,
    _string_list,
    _to_decimal,
    _to_str,
)
from .models import (
    Deposit,
    DepositInfo,
    DepositTicket,
    Level1Summary,
    Order,
    Withdraw,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

__all__ = ["converter", "structure", "structure_list"]

T = TypeVar("T")


def _members(cls: type[enum.Enum]) -> _Members:
    """The member lookup of an enum (its converter built first if need be)."""
    _structurer(cls)
    return _ENUM_MEMBERS[cls]


# Wire keys that do not normalise to the field name (normalised key -> field name).
_ALIASES: dict[type, dict[str, str]] = {
    Order: {"instrument": "instrument_id", "account": "account_id"},
    Level1Summary: {"instrumentsymbol": "symbol"},
}
# Fields whose wire value needs more than their annotation says.
_FIELD_OVERRIDES: dict[tuple[type, str], _Fn] = {
    (DepositTicket, "deposit_info"): _json_text,
    (WithdrawTicket, "template_form"): _json_text,
    (DepositInfo, "deposit_info"): _string_list,
    **{
        (cls, name): _optional_json_text
        for cls, names in (
            (DepositTicket, ("comments", "attachments")),
            (WithdrawTicket, ("comments", "attachments", "audit_log")),
            (Deposit, ("deposit_info",)),
            (Withdraw, ("template_form", "withdraw_transaction_details")),
        )
        for name in names
    },
}
_KEY_CACHE_LIMIT = 1024
# Longest wire key kept: a key of megabytes is read (and ignored), but keeping it, or a
# key set holding it, would let a hostile server pin memory for the process's life.
_KEY_TEXT_KEPT = 64
# Key sets planned per class, and value-type patterns per key set: a server sends only
# a handful of each.  Past a limit, plans and patterns are worked out per object.
_SHAPE_LIMIT = 64
_PATTERN_LIMIT = 64
_STRUCTURERS: dict[Any, _Fn] = {}
_FACTORY: type = type(attrs.Factory(list))
#: (argument index, conversion) for each value of one type pattern that needs one.
_Steps = tuple[tuple[int, _Fn], ...]
_UNSEEN: Any = object()


@attrs.frozen
class _Reader:
    """How one field reads a JSON value.

    ``takes``: the value types kept as they are; ``quick``: a C-level converter for some
    other types (a dict lookup: an int into a ``Decimal``, a name or an int into an enum
    member); ``convert``: any other value (it refuses what does not fit).
    """

    takes: frozenset[type]
    quick: Mapping[type, _Fn]
    convert: _Fn

    def step(self, kind: type) -> _Fn | None:
        """The conversion a value of type ``kind`` needs (``None``: none)."""
        if kind in self.takes:
            return None
        return self.quick.get(kind, self.convert)


def _reader(tp: Any) -> _Reader:
    """The :class:`_Reader` of one annotation."""
    if tp is Decimal:
        quick: dict[type, _Fn] = {int: _INT_DECIMAL.__getitem__, str: _decimal_of_str}
        return _Reader(frozenset({Decimal}), quick, _to_decimal)
    if tp in _SCALARS:
        return _Reader(frozenset() if tp is Any else frozenset({tp}), {}, _SCALARS[tp])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        lookup = _members(tp).__getitem__
        return _Reader(frozenset({tp}), {int: lookup, str: lookup}, _structurer(tp))
    if isinstance(tp, type) and attrs.has(tp):
        return _Reader(frozenset({tp}), {}, _structurer(tp))
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = _reader(args[0] if args[1] is NoneType else args[1])
        convert = inner.convert

        def optional(value: Any) -> Any:
            return None if value is None else convert(value)

        return _Reader(inner.takes | {NoneType}, inner.quick, optional)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _reader(args[0])

        def sequence(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise errors.DecodeError(f"expected a list, got {_kind(value)}")
            return tuple(v if type(v) in item.takes else item.convert(v) for v in value)

        return _Reader(frozenset(), {}, sequence)
    return _Reader(frozenset(), {}, _fallback(tp))


@attrs.frozen
class _Field:
    """One ``__init__`` argument of a model: how it reads and how it is passed."""

    name: str  # the attribute, named in errors
    argument: str  # the ``__init__`` parameter
    reader: _Reader
    positional: bool
    default: Any  # attrs.NOTHING: required; an attrs Factory: left to __init__


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        override = _FIELD_OVERRIDES.get((cls, field.name))
        if override is None:
            reader = _reader(hints.get(field.name, Any))
        else:  # JSON text is kept as it came; a list of str is parsed out of it
            text = override in (_json_text, _optional_json_text)
            reader = _Reader(frozenset({str}) if text else frozenset(), {}, override)
        result.append(
            _Field(field.name, field.alias or field.name, reader, not field.kw_only, field.default)
        )
    return tuple(result)


def _picker(keys: list[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """Items ``keys`` of a mapping or a tuple, as a tuple, in one C-level call."""
    if len(keys) >= 2:
        return operator.itemgetter(*keys)
    if keys:
        key = keys[0]
        return lambda items: (items[key],)
    return lambda items: ()


class _Plan:
    """How to build one model from the objects of one key set (keys in that order).

    ``pick`` takes the ``__init__`` arguments out of an object in one ``itemgetter`` call,
    positional ones first; an absent field that comes before present ones gets a stand-in
    value that a conversion step replaces with its default.  The types of the values
    select the conversions, worked out once per type pattern (the current and previous
    patterns are compared first): an object costs a few C-level passes plus one call per
    value whose JSON type is not its field's.
    """

    __slots__ = (
        "current",
        "defaults",
        "fields",
        "keys",
        "keywords",
        "missing",
        "model",
        "patterns",
        "pick",
        "previous",
    )

    def __init__(self, model: _ModelReader, shape: tuple[Any, ...]) -> None:
        self.model = model
        # The key set as a list: ``[*data] != plan.keys`` is the cheapest exact check.
        self.keys = list(shape)
        fields = model.fields
        chosen: dict[int, tuple[int, bool]] = {}  # field -> (its key's position, alias?)
        for position, key in enumerate(shape):
            found = model.resolve(key)
            if found is not None:
                index, alias = found
                seen = chosen.get(index)
                # Two spellings of one key: the later wins, as in a dict, but a field's
                # own name beats an alias of it.
                if not (alias and seen is not None and not seen[1]):
                    chosen[index] = (position, alias)
        absent = [f.argument for i, f in enumerate(fields) if i not in chosen and _required(f)]
        self.missing = (
            f"{model.name}: missing required field(s) {', '.join(absent)}" if absent else None
        )
        row: list[int] = []  # per argument: its key's position, or width + its default's
        used: list[_Field | None] = []  # per argument: its field (None: a default)
        keywords: list[str] = []
        defaults: list[Any] = []
        open_ = True
        for index, field in enumerate(fields):
            where = chosen.get(index)
            if open_ and field.positional:
                if where is None and isinstance(field.default, _FACTORY):
                    open_ = False
                else:
                    if where is None:
                        where = (len(shape) + len(defaults), False)
                        defaults.append(field.default)
                    row.append(where[0])
                    used.append(None if index not in chosen else field)
                    continue
            if where is not None:
                keywords.append(field.argument)
                row.append(where[0])
                used.append(field)
        positional = len(row) - len(keywords)
        while positional and used[positional - 1] is None:  # __init__ supplies these
            positional -= 1
            del row[positional], used[positional]
            defaults.pop()
        self.pick: Callable[[Mapping[Any, Any]], tuple[Any, ...]]
        width = len(shape)  # row positions from here on are defaults
        # An absent field before present ones takes its default as a conversion of a
        # stand-in value (the object's first key): the pick stays one C-level call.
        self.defaults: tuple[tuple[int, _Fn], ...] = tuple(
            (index, _constant(defaults[at - width])) for index, at in enumerate(row) if at >= width
        )
        if width:
            self.pick = _picker([shape[at if at < width else 0] for at in row])
        else:
            nothing = tuple(defaults)
            self.pick = lambda data: nothing
            self.defaults = ()
        self.fields = tuple(used)
        self.keywords = tuple(keywords)
        self.patterns: dict[tuple[type, ...], _Steps] = {}
        # The type pattern seen last (a list, compared with the list each object's value
        # types make) and its steps, in one attribute so that a thread never reads the
        # pattern of one and the steps of another.
        self.current: tuple[list[type], _Steps] = ([_UNSEEN], ())
        self.previous: tuple[list[type], _Steps] = self.current

    def steps(self, kinds: list[type]) -> _Steps:
        """(argument index, conversion) for each value of type pattern ``kinds`` needing one.

        The pattern becomes the current one; the one it replaces is kept as the previous
        one, so rows alternating between two patterns (a field sometimes a number,
        sometimes text) are matched without a lookup.
        """
        previous = self.previous
        if kinds == previous[0]:
            self.previous, self.current = self.current, previous
            return previous[1]
        key = tuple(kinds)
        steps = self.patterns.get(key)
        if steps is None:
            steps = tuple(
                sorted(
                    (
                        *self.defaults,
                        *(
                            (index, step)
                            for index, (field, kind) in enumerate(
                                zip(self.fields, key, strict=True)
                            )
                            if field is not None and (step := field.reader.step(kind)) is not None
                        ),
                    ),
                    key=_first,
                )
            )
            if len(self.patterns) < _PATTERN_LIMIT:
                self.patterns[key] = steps
        self.previous, self.current = self.current, (kinds, steps)
        return steps

    def where(self, index: int) -> str:
        field = self.fields[index]
        return f"{self.model.name}.{field.name if field is not None else '?'}"


def _first(step: tuple[int, _Fn]) -> int:
    return step[0]


def _constant(value: Any) -> _Fn:
    """A conversion that gives ``value`` whatever it is given (a field's default)."""

    def default(_stand_in: Any) -> Any:
        return value

    return default


def _required(field: _Field) -> bool:
    return field.default is attrs.NOTHING


class _ModelReader:
    """The structuring function of one attrs model (built once per class).

    Keys match fields case-insensitively with underscores ignored (plus
    :data:`_ALIASES`); each key set gets a :class:`_Plan`.  Plain code: no source is
    generated.
    """

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.fields = _fields(cls)
        table: dict[str, tuple[int, bool]] = {}  # normalised key -> (field, alias?)
        for index, field in enumerate(self.fields):
            table[_norm(field.name)] = (index, False)
        for alias, target in _ALIASES.get(cls, {}).items():
            table[alias] = (table[_norm(target)][0], True)
        self.table = table
        self.keys: dict[Any, tuple[int, bool] | None] = {}
        self.shapes: dict[tuple[Any, ...], _Plan] = {}
        # The plan used last: the objects of one answer share their key set, and comparing
        # two lists of the same key objects costs less than hashing a tuple.  Only a plan
        # with every required field becomes the last one; this first one matches no object.
        self.last = _Plan(self, (_UNSEEN,))

    def resolve(self, key: Any) -> tuple[int, bool] | None:
        """(field index, alias?) that wire key ``key`` fills, or ``None`` (ignored)."""
        found = self.keys.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self.table.get(_norm(key)) if isinstance(key, str) else None
            if len(self.keys) < _KEY_CACHE_LIMIT and (
                type(key) is not str or len(key) <= _KEY_TEXT_KEPT
            ):
                self.keys[key] = found
        return found  # type: ignore[no-any-return]

    def plan(self, shape: tuple[Any, ...]) -> _Plan:
        """The plan of key set ``shape`` (made and kept the first time), now the last one.

        Raises :class:`~kiiex_async.errors.DecodeError` when a required field is missing.
        """
        plan = self.shapes.get(shape)
        if plan is None:
            plan = _Plan(self, shape)
            if len(self.shapes) < _SHAPE_LIMIT and all(key in self.keys for key in shape):
                self.shapes[shape] = plan
        if plan.missing is not None:
            raise errors.DecodeError(plan.missing)
        self.last = plan
        return plan

    def structure(self, data: Any) -> Any:
        """The model read from one decoded JSON object."""
        if type(data) is not dict:
            if isinstance(data, self.cls):
                return data
            if not isinstance(data, Mapping):
                raise errors.DecodeError(f"{self.name}: expected a JSON object, got {_kind(data)}")
        # Lists, not tuples: built faster, and compared as fast.
        keys = [*data]
        plan = self.last
        if keys != plan.keys:
            plan = self.plan(tuple(keys))
        values: Any = plan.pick(data)
        kinds = [*map(type, values)]
        seen, steps = plan.current
        if kinds != seen:
            steps = plan.steps(kinds)
        if steps:
            values = list(values)
            index = 0
            try:
                for index, convert in steps:
                    values[index] = convert(values[index])
            except errors.DecodeError as exc:
                raise errors.DecodeError(f"{plan.where(index)}: {exc}") from None
            except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
                raise errors.DecodeError(f"{plan.where(index)}: {type(exc).__name__}") from None
        if plan.keywords:
            split = len(values) - len(plan.keywords)
            keywords = dict(zip(plan.keywords, values[split:], strict=True))
            return self.cls(*values[:split], **keywords)
        return self.cls(*values)


def _withdraw_template(data: Any) -> Any:
    """``{"Template": "<json>"}`` -> WithdrawTemplate (type, field names, the JSON text)."""
    if not isinstance(data, Mapping):
        return data
    raw = next((v for k, v in data.items() if isinstance(k, str) and k.lower() == "template"), None)
    if raw is None:
        return data
    template = loads(raw) if isinstance(raw, str) else raw
    if not isinstance(template, Mapping):
        raise errors.DecodeError("WithdrawTemplate.template: expected a JSON object")
    template_type = ""
    fields: list[str] = []
    for key, value in template.items():
        if _norm(key) == "templatetype":
            template_type = _to_str(value)
        else:
            fields.append(key)
    text = raw if isinstance(raw, str) else _json_text(raw)
    return {"template_type": template_type, "fields": fields, "template": text}


def _withdraw_template_type(data: Any) -> Any:
    """``"Standard"`` (old venues) or an object (newer ones)."""
    return {"template_name": data} if isinstance(data, str) else data


_PREPARE: dict[type, _Fn] = {
    WithdrawTemplate: _withdraw_template,
    WithdrawTemplateType: _withdraw_template_type,
}


def _prepared(prepare: _Fn, inner: _Fn) -> _Fn:
    def structure_prepared(data: Any) -> Any:
        return inner(prepare(data))

    return structure_prepared


def _fallback(cls: Any) -> _Fn:
    def structure_other(data: Any) -> Any:
        try:
            return converter.structure(data, cls)
        except errors.DecodeError:
            raise
        except Exception as exc:
            raise errors.DecodeError(f"{cls}: {type(exc).__name__}") from None

    return structure_other


def _structurer(cls: Any) -> _Fn:
    """The cached one-argument structuring function of a type."""
    found = _STRUCTURERS.get(cls)
    if found is not None:
        return found
    function: _Fn
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        function = _enum_converter(cls)
    elif isinstance(cls, type) and attrs.has(cls):
        # Registered before it is built so that self-referencing models terminate.
        _STRUCTURERS[cls] = lambda data: _STRUCTURERS[cls](data)
        # A bound method: called faster than an instance with ``__call__``.
        function = _ModelReader(cls).structure
        prepare = _PREPARE.get(cls)
        if prepare is not None:
            function = _prepared(prepare, function)
    elif cls in _SCALARS:
        function = _SCALARS[cls]
    else:
        function = _fallback(cls)
    _STRUCTURERS[cls] = function
    return function


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


#: The one converter.  ``converter.structure(data, SomeModel)`` applies the same policy as
#: :func:`structure`; it also handles containers (``list[Order]``, ``dict[str, Decimal]``).
converter = cattrs.Converter(detailed_validation=False)
for _scalar in (Decimal, int, bool, str):
    converter.register_structure_hook(_scalar, lambda value, tp: _SCALARS[tp](value))
converter.register_structure_hook_func(_is_enum, lambda value, tp: _structurer(tp)(value))
converter.register_structure_hook_factory(
    attrs.has, lambda cls: lambda value, _tp: _structurer(cls)(value)
)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` (a model, an enum, ``Decimal``, ``int``...) from decoded JSON.

    Raises :class:`~kiiex_async.errors.DecodeError` naming the class and field when a
    required field is missing or a value has the wrong type.
    """
    function = _STRUCTURERS.get(cls)
    if function is None:
        function = _structurer(cls)
    try:
        return function(data)  # type: ignore[no-any-return]
    except errors.DecodeError as exc:
        if isinstance(cls, type) and attrs.has(cls):
            raise
        raise errors.DecodeError(f"{getattr(cls, '__name__', cls)}: {exc}") from None


def structure_list(data: Any, cls: type[T]) -> list[T]:
    """Build a list of ``cls`` from a JSON array, or from JSON text holding one.

    Errors name the item's index as well as the class and field.
    """
    if isinstance(data, str | bytes):
        data = loads(data)
    if not isinstance(data, list | tuple):
        raise errors.DecodeError(f"expected a JSON array of {cls.__name__}, got {_kind(data)}")
    function = _STRUCTURERS.get(cls)
    if function is None:
        function = _structurer(cls)
    result: list[T] = []
    append = result.append
    try:
        for item in data:
            append(function(item))
    except errors.DecodeError as exc:
        raise errors.DecodeError(f"item {len(result)}: {exc}") from None
    return result
