"""Records <-> plain documents, and the flat index fields every list filter reads.

The conversion is generic over the domain dataclasses (nested values, tuples, optional parts,
enums), so a new field needs no code here. Both stores use ``index_fields`` so that the
in-memory fake filters exactly as MongoDB does.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any, Generic, TypeVar, Union

from ssg.catalog.domain.model import (
    FundingOpportunity,
    KnowledgeProduct,
    Need,
    Solution,
    Source,
)
from ssg.platform.reference.geography import region_name
from ssg.platform.reference.regions import region_of

T = TypeVar("T")
Doc = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Kind(Generic[T]):
    """One kind of record: its collection, class, and the field naming its organization."""

    collection: str
    cls: type[T]
    org_field: str


SOLUTIONS = Kind("solutions", Solution, "organization_id")
KNOWLEDGE = Kind("knowledge_products", KnowledgeProduct, "publishing_organization_id")
NEEDS = Kind("needs", Need, "seeker_organization_id")
FUNDING = Kind("funding_opportunities", FundingOpportunity, "funder_organization_id")
KINDS: tuple[Kind[Any], ...] = (SOLUTIONS, KNOWLEDGE, NEEDS, FUNDING)


def to_plain(value: Any) -> Any:
    """A dataclass tree as dicts, lists and scalars (enums by value, datetimes kept)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _writer(type(value))(value)
    return _any_plain(value)


def _any_plain(value: Any) -> Any:
    """to_plain of a value whose type the hints do not tell."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _writer(type(value))(value)
    if isinstance(value, tuple | list):
        return [_any_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _scalar(value: Any) -> Any:
    # A str-typed field may hold a StrEnum member (e.g. Source.MANUAL): stored by value.
    return value.value if isinstance(value, Enum) else value


@cache
def _writer(cls: type) -> Callable[[Any], Doc]:
    """The converter of a cls instance to its document, built once per type from its hints:
    every imported or saved record is written, and walking dataclasses.fields and isinstance
    checks per value cost more than the rest of building the document."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _plain_of(hints[f.name])) for f in dataclasses.fields(cls)]

    def write(value: Any) -> Doc:
        return {name: convert(getattr(value, name)) for name, convert in fields}

    return write


def _plain_of(tp: Any) -> Callable[[Any], Any]:
    """The to_plain of a value annotated tp."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return _any_plain
        inner = _plain_of(args[0])
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        parts = typing.get_args(tp)
        if len(parts) != 2 or parts[1] is not Ellipsis:
            return _any_plain
        item = _plain_of(parts[0])
        if item is _scalar:
            return lambda value: [_scalar(v) for v in value]
        return lambda value: [item(v) for v in value]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        nested = _writer(tp)
        # A subclass instance (or a stray type) still converts by what it is.
        return lambda value: nested(value) if type(value) is tp else _any_plain(value)
    if tp in (str, int, bool, float, datetime) or (isinstance(tp, type) and issubclass(tp, Enum)):
        return _scalar
    return _any_plain


def _same(value: Any) -> Any:
    return value


@cache
def _reader(tp: Any) -> Callable[[Any], Any]:
    """The converter of a non-None stored value to tp, built once per type: reading a record
    is on every Get and List, and walking the type hints per value cost more than the read."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _reader(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin is tuple:
        item = _reader(typing.get_args(tp)[0])
        if item is _same:
            return tuple
        return lambda value: tuple(None if v is None else item(v) for v in value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_reader(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp is int:
        return int
    return _same


def _dataclass_reader(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _reader(hints[f.name]) for f in dataclasses.fields(cls)}

    def read(value: Any) -> Any:
        kwargs = {}
        for name, item in value.items():
            convert = fields.get(name)
            if convert is not None:
                kwargs[name] = item if item is None or convert is _same else convert(item)
        return cls(**kwargs)

    return read


def from_plain(tp: Any, value: Any) -> Any:
    """The inverse of to_plain for a value of (annotated) type tp."""
    return None if value is None else _reader(tp)(value)


def record_doc(kind: Kind[Any], record: Any) -> Doc:
    """The stored document: the record's fields plus ``ix`` (index fields) and ``_id``."""
    doc = to_plain(record)
    doc["_id"] = doc.pop("id")
    doc["ix"] = index_fields(record)
    return doc


def record_from_doc(kind: Kind[T], doc: Doc) -> T:
    """The record a stored document holds."""
    data = {k: v for k, v in doc.items() if k not in ("_id", "ix")}
    data["id"] = doc["_id"]
    result: T = from_plain(kind.cls, data)
    return result


def index_fields(record: Any) -> Doc:
    """Flat fields the list filters and sweeps query (see ports.Query)."""
    content = record.content
    ix: Doc = {
        "status": str(record.status),
        "instance": record.instance,
        "updated": record.update_time,
        "page": page_key(record.update_time, record.id),
        "sdgs": list(getattr(content, "sdgs", ())),
        # Import ids are unique per instance; a proposal's id is unique per producer only, and
        # its uniqueness is kept by its proposal link instead.
        "ext": (record.provenance.external_id or None)
        if record.provenance.source != Source.INGRESS
        else None,
    }
    if isinstance(record, Solution):
        ix["org"] = record.organization_id
        # Once each: the owner may also be listed as a partner, and one organization may be a
        # partner in two roles; a repeated key would be a repeated index entry on the stand-in.
        ix["orgs"] = list(
            dict.fromkeys([record.organization_id, *(p.organization_id for p in content.partners)])
        )
        ix["targets"] = list(content.sdg_targets)
        ix["countries"] = sorted({*content.implementing_countries, *content.beneficiary_countries})
        ix["regions"] = list(content.regions)
        ix["modality"] = content.modality
        ix["stale"] = record.stale
        ix["confirmed"] = record.confirm_time or record.publish_time
    elif isinstance(record, KnowledgeProduct):
        ix["org"] = record.publishing_organization_id
        ix["orgs"] = [ix["org"]]
        ix["type"] = content.type
    elif isinstance(record, Need):
        ix["org"] = record.seeker_organization_id
        ix["orgs"] = [ix["org"]]
        ix["countries"] = [content.country]
        ix["regions"] = need_regions(content.country)
        ix["support"] = list(content.support_kinds)
    elif isinstance(record, FundingOpportunity):
        ix["org"] = record.funder_organization_id
        ix["orgs"] = [ix["org"]]
        ix["countries"] = list(content.eligible_countries)
        ix["open_to_all"] = not content.eligible_countries
        ix["deadline"] = content.deadline
    return ix


def need_regions(country: str) -> list[str]:
    """The region names a need's country puts it in (none for a country outside every region)."""
    region = region_of(country)
    return [region_name(region)] if region else []


def page_key(updated: datetime, record_id: str) -> str:
    """One string ordered as the pair (last update, id): lists run down it, and a page after a
    cursor is a single index range (``page < cursor``) rather than an ``$or`` of two."""
    at = updated.replace(tzinfo=UTC) if updated.tzinfo is None else updated.astimezone(UTC)
    # Fixed width, so that string order is time order; NUL sorts below every id character.
    return f"{at:%Y%m%d%H%M%S%f}\x00{record_id}"


def sort_key(record: Any) -> tuple[datetime, str]:
    """Lists run newest update first, ties by id (descending)."""
    return (record.update_time, record.id)
