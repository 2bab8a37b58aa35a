"""Protobuf messages <-> domain values of the search API (enum names, facets, hits)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.descriptor import EnumDescriptor

from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2, paging_pb2, sdg_pb2
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.platform.errors import Violations
from ssg.platform.paging import PageCodec, page_size
from ssg.search.domain import requests as checks
from ssg.search.domain.documents import EntityType
from ssg.search.domain.queries import Cursor, Filters, SearchQuery, Sort
from ssg.search.domain.results import Hit, Results

_ENTITY = pb.EntityType.DESCRIPTOR
_SORT = pb.SortOrder.DESCRIPTOR
_MODALITY = pb.Modality.DESCRIPTOR
_REGION = geography_pb2.Region.DESCRIPTOR
_ORG_TYPE = organization_type_pb2.OrganizationType.DESCRIPTOR
_SDG = sdg_pb2.Sdg.DESCRIPTOR


def _names(
    v: Violations, path: str, values: Iterable[int], descriptor: EnumDescriptor, prefix: str
) -> list[str]:
    """Enum values as names without prefix; unknown or unspecified values are violations."""
    out: list[str] = []
    for i, value in enumerate(values):
        found = descriptor.values_by_number.get(value)
        if value == 0 or found is None:
            v.add(f"{path}[{i}]", f"is not a valid {descriptor.name}")
            continue
        out.append(found.name.removeprefix(prefix))
    return out


def entity_types(v: Violations, path: str, values: Iterable[int]) -> tuple[EntityType, ...]:
    """EntityType enum values as domain entity types."""
    names = checks.check_values(v, path, _names(v, path, values, _ENTITY, "ENTITY_TYPE_"))
    return tuple(EntityType(n.lower()) for n in names)


def entity_type_of(v: Violations, path: str, value: int) -> EntityType | None:
    """One EntityType enum value (required)."""
    names = _names(v, path, [value], _ENTITY, "ENTITY_TYPE_")
    return EntityType(names[0].lower()) if names else None


def entity_type_value(entity_type: EntityType) -> int:
    """The proto enum value of an entity type."""
    return _ENTITY.values_by_name[f"ENTITY_TYPE_{entity_type.name}"].number


def sort_of(v: Violations, value: int) -> Sort:
    """The requested order (relevance by default)."""
    found = _SORT.values_by_number.get(value)
    if found is None:
        v.add("sort", "is not a valid SortOrder")
        return Sort.RELEVANCE
    name = found.name.removeprefix("SORT_ORDER_")
    return Sort.RELEVANCE if name == "UNSPECIFIED" else Sort(name.lower())


def filters_of(v: Violations, f: pb.SearchFilters) -> Filters:
    """Domain filters from the request's filters (each bad value named)."""
    p = "filters"
    sdgs = _names(v, f"{p}.sdgs", f.sdgs, _SDG, "SDG_")
    years = checks.check_years(v, p, f.year_from, f.year_to)
    return Filters(
        entity_types=entity_types(v, f"{p}.entity_types", f.entity_types),
        sdgs=checks.check_values(
            v, f"{p}.sdgs", [str(_SDG.values_by_name[f"SDG_{n}"].number) for n in sdgs]
        ),
        sdg_targets=checks.check_sdg_targets(v, f"{p}.sdg_targets", f.sdg_targets),
        regions=checks.check_values(
            v, f"{p}.regions", _names(v, f"{p}.regions", f.regions, _REGION, "REGION_")
        ),
        countries=checks.check_countries(v, f"{p}.countries", f.countries),
        organization_types=checks.check_values(
            v,
            f"{p}.organization_types",
            _names(
                v, f"{p}.organization_types", f.organization_types, _ORG_TYPE, "ORGANIZATION_TYPE_"
            ),
        ),
        modalities=checks.check_values(
            v, f"{p}.modalities", _names(v, f"{p}.modalities", f.modalities, _MODALITY, "MODALITY_")
        ),
        year_from=years[0],
        year_to=years[1],
        verified_only=f.verified_only,
        languages=checks.check_languages(v, f"{p}.languages", f.languages),
    )


def fingerprint(request: pb.SearchRequest) -> str:
    """What a page token is bound to: the request without its page."""
    copy = pb.SearchRequest()
    copy.CopyFrom(request)
    copy.ClearField("page")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _enum_values(descriptor: EnumDescriptor, prefix: str, names: Sequence[str]) -> list[Any]:
    out = []
    for name in names:
        found = descriptor.values_by_name.get(prefix + name)
        if found is not None:
            out.append(found.number)
    return out


def hit_message(h: Hit) -> pb.SearchHit:
    """The API form of a result."""
    return pb.SearchHit(
        entity_type=entity_type_value(h.entity_type),  # type: ignore[arg-type]
        id=h.id,
        title=h.title,
        snippet=h.snippet,
        sdgs=[int(s) for s in h.sdgs if s.isdigit()],  # type: ignore[misc]
        regions=_enum_values(_REGION, "REGION_", h.regions),
        countries=list(h.countries),
        organization_id=h.organization_id,
        verified_provider=h.verified_provider,
        language=h.languages[0] if h.languages else "",
        year=h.year,
        score=h.score,
        highlights=[pb.Highlight(field=k, fragments=list(v)) for k, v in h.highlights.items()],
    )


def search_query(request: pb.SearchRequest, codec: PageCodec) -> SearchQuery:
    """The validated query of a request; ValidationError naming every bad field."""
    v = Violations()
    text = checks.check_query_text(v, request.query)
    filters = filters_of(v, request.filters)
    sort = sort_of(v, request.sort)
    size = 0
    try:
        size = page_size(request.page.page_size)
    except ValueError as exc:
        v.add("page.page_size", str(exc))
    cursor: Cursor | None = None
    try:
        data = codec.decode(request.page.page_token, fingerprint(request))
        if data is not None:
            cursor = Cursor.from_json(data, sort)
    except ValueError as exc:  # PageTokenError is a ValueError
        v.add("page.page_token", str(exc))
    v.raise_if_any()
    broad = cursor is not None and cursor.broad
    return SearchQuery(text=text, filters=filters, sort=sort, size=size, cursor=cursor, broad=broad)


def search_response(
    request: pb.SearchRequest, page: Results, codec: PageCodec
) -> pb.SearchResponse:
    """The API form of a page of results."""
    hits = [hit_message(h) for h in page.hits]
    groups = []
    for entity_type, total in sorted(page.groups.items(), key=lambda kv: -kv[1]):
        value = entity_type_value(entity_type)
        groups.append(
            pb.ResultGroup(
                entity_type=value,  # type: ignore[arg-type]
                total=total,
                hits=[m for m in hits if m.entity_type == value],
            )
        )
    facets = [
        pb.Facet(field=name, values=[pb.FacetValue(value=k, count=c) for k, c in values])
        for name, values in page.facets.items()
    ]
    token = codec.encode(page.cursor.to_json(), fingerprint(request)) if page.cursor else ""
    return pb.SearchResponse(
        hits=hits,
        groups=groups,
        facets=facets,
        page=paging_pb2.PageResponse(next_page_token=token, total_size=page.total),
    )
