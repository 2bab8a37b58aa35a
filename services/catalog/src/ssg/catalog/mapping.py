"""Translation between domain values and ``ssg.catalog.v1`` messages, shared by the servicer
(requests and replies) and the event builders (payloads).

Domain dataclasses use the proto field names, so the mapping is generic: enums travel as
their value names without the enum's prefix ('' for unset, '#<n>' for a number this build
does not know, which validation rejects), SDG goals as their numbers, SDG targets as codes,
timestamps as aware datetimes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, Union

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ssg.catalog.domain.model import (
    CriterionScore,
    FundingContent,
    FundingOpportunity,
    KnowledgeContent,
    KnowledgeProduct,
    Need,
    NeedContent,
    Review,
    Solution,
    SolutionContent,
)
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    knowledge_product_pb2,
    need_pb2,
    review_pb2,
    solution_pb2,
)
from ssg.platform.validation import to_datetime

D = TypeVar("D")
_TIMESTAMP = "google.protobuf.Timestamp"
_SDG = "ssg.common.v1.Sdg"
_SDG_TARGET = "ssg.common.v1.SdgTarget"


@cache
def _prefix(enum: Any) -> str:
    """'SOLUTION_STATUS_' for SolutionStatus: its zero value's name without UNSPECIFIED."""
    return enum.values_by_number[0].name.removesuffix("UNSPECIFIED")


def enum_name(enum: Any, number: int) -> str:
    """The domain name of an enum number ('' for 0, '#<n>' for an undefined number)."""
    if number == 0:
        return ""
    value = enum.values_by_number.get(number)
    return value.name.removeprefix(_prefix(enum)) if value is not None else f"#{number}"


def enum_number(enum: Any, name: str) -> int:
    """The proto number of a domain enum name ('' -> 0)."""
    return enum.values_by_name[_prefix(enum) + name].number if name else 0


def _unwrap(tp: Any) -> Any:
    """The element type of tuple[X, ...] and of X | None."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _unwrap(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin is tuple:
        return _unwrap(typing.get_args(tp)[0])
    return tp


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read_one(fd: Any, value: Any, tp: Any, path: str) -> Any:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return int(value) if fd.enum_type.full_name == _SDG else enum_name(fd.enum_type, value)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        name = fd.message_type.full_name
        if name == _TIMESTAMP:
            return to_datetime(value, path)
        if name == _SDG_TARGET:
            return value.code
        return read(value, _unwrap(tp), path)
    return value


def read(message: Message, cls: type[D], path: str = "") -> D:
    """A dataclass of cls from the message fields of the same names (others keep defaults).

    path is where message sits in the request (e.g. ``solution``): errors name the field in it.
    """
    prefix = f"{path}." if path else ""
    by_name = message.DESCRIPTOR.fields_by_name
    hints = _hints(cls)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        fd: Any = by_name.get(f.name)
        if fd is None:
            continue
        raw = getattr(message, f.name)
        where = prefix + f.name
        if fd.is_repeated:
            values[f.name] = tuple(
                _read_one(fd, item, hints[f.name], f"{where}[{i}]") for i, item in enumerate(raw)
            )
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            has = message.HasField(f.name)
            values[f.name] = _read_one(fd, raw, hints[f.name], where) if has else None
        else:
            values[f.name] = _read_one(fd, raw, hints[f.name], where)
    return cls(**values)


def _write_one(fd: Any, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return int(value) if isinstance(value, int) else enum_number(fd.enum_type, str(value))
    return value


# How write copies one field: what the message field is, decided once per (class, message).
_SCALAR, _ENUM, _REPEATED, _REPEATED_ENUM, _TIMESTAMPS, _TARGETS, _MESSAGES = range(7)


@cache
def _plan(cls: type, message_type: Any) -> tuple[tuple[str, int, Any], ...]:
    """(field name, how, descriptor) of each dataclass field the message has: built once, since
    looking up descriptors per field and value cost more than the copying itself."""
    steps: list[tuple[str, int, Any]] = []
    for f in dataclasses.fields(cls):
        fd: Any = message_type.fields_by_name.get(f.name)
        if fd is None:
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            name = fd.message_type.full_name
            how = (
                _TIMESTAMPS
                if name == _TIMESTAMP
                else _TARGETS
                if name == _SDG_TARGET
                else _MESSAGES
            )
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            how = _REPEATED_ENUM if fd.is_repeated else _ENUM
        else:
            how = _REPEATED if fd.is_repeated else _SCALAR
        steps.append((f.name, how, fd))
    return tuple(steps)


def write(obj: Any, message: Message) -> Message:
    """Copy obj's dataclass fields into the message fields of the same names; return message."""
    cls: Any = type(obj)
    descriptor: Any = message.DESCRIPTOR  # one object per message type: hashable
    for name, how, fd in _plan(cls, descriptor):
        value = getattr(obj, name)
        if value is None:
            continue
        if how == _SCALAR:
            setattr(message, name, value)
        elif how == _ENUM:
            setattr(message, name, _write_one(fd, value))
        elif how == _REPEATED:
            getattr(message, name).extend(value)
        elif how == _REPEATED_ENUM:
            getattr(message, name).extend(_write_one(fd, v) for v in value)
        else:
            target = getattr(message, name)
            items = value if fd.is_repeated else (value,)
            for item in items:
                sub = target.add() if fd.is_repeated else target
                if how == _TIMESTAMPS:
                    sub.FromDatetime(item)
                elif how == _TARGETS:
                    sub.code = item
                else:
                    write(item, sub)
    return message


def _record(record: Any, message: Message, verified: bool | None) -> Message:
    write(record.content, message)
    write(record, message)
    if verified is not None:
        message.provenance.vouching_organization_verified = verified  # type: ignore[attr-defined]
    return message


def solution_to_proto(s: Solution, verified: bool | None = None) -> solution_pb2.Solution:
    """The full message of a solution; verified overrides the stored vouching flag."""
    msg = solution_pb2.Solution()
    _record(s, msg, verified)
    return msg


def knowledge_to_proto(
    k: KnowledgeProduct, verified: bool | None = None
) -> knowledge_product_pb2.KnowledgeProduct:
    """The full message of a knowledge product."""
    msg = knowledge_product_pb2.KnowledgeProduct()
    _record(k, msg, verified)
    return msg


def need_to_proto(n: Need, verified: bool | None = None) -> need_pb2.Need:
    """The full message of a need."""
    msg = need_pb2.Need()
    _record(n, msg, verified)
    return msg


def funding_to_proto(
    f: FundingOpportunity, verified: bool | None = None
) -> funding_pb2.FundingOpportunity:
    """The full message of a funding opportunity."""
    msg = funding_pb2.FundingOpportunity()
    _record(f, msg, verified)
    return msg


def review_to_proto(r: Review) -> review_pb2.Review:
    """The message of a review."""
    msg = review_pb2.Review()
    write(r, msg)
    return msg


def solution_content(msg: solution_pb2.Solution, path: str = "solution") -> SolutionContent:
    """What a caller wrote into a Solution message."""
    return read(msg, SolutionContent, path)


def knowledge_content(
    msg: knowledge_product_pb2.KnowledgeProduct, path: str = "knowledge_product"
) -> KnowledgeContent:
    """What a caller wrote into a KnowledgeProduct message."""
    return read(msg, KnowledgeContent, path)


def need_content(msg: need_pb2.Need, path: str = "need") -> NeedContent:
    """What a caller wrote into a Need message."""
    return read(msg, NeedContent, path)


def funding_content(
    msg: funding_pb2.FundingOpportunity, path: str = "funding_opportunity"
) -> FundingContent:
    """What a caller wrote into a FundingOpportunity message."""
    return read(msg, FundingContent, path)


def review_scores(msg: review_pb2.Review) -> tuple[CriterionScore, ...]:
    """The checklist a reviewer sent."""
    return tuple(read(item, CriterionScore) for item in msg.scores)


def timestamp_or_none(msg: Message, field: str) -> datetime | None:
    """An optional Timestamp field as an aware datetime."""
    if not msg.HasField(field):
        return None
    return to_datetime(getattr(msg, field), field)
