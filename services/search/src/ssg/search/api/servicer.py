"""The gRPC servicer: translate requests into service calls and results into replies, nothing
else. Validation lives in the domain checks; the platform interceptor maps domain errors
(ValidationError -> INVALID_ARGUMENT, NotFound, Unavailable) to status codes."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.contracts.search.v1 import search_service_pb2_grpc as pb_grpc
from ssg.platform.errors import Violations
from ssg.platform.grpc.interceptors import current_identity
from ssg.platform.paging import PageCodec
from ssg.search.api import convert
from ssg.search.domain import requests as checks
from ssg.search.service import SearchService

Context: TypeAlias = grpc.aio.ServicerContext


class SearchServicer(pb_grpc.SearchServiceServicer):
    """SearchService over a SearchService use-case object."""

    def __init__(self, service: SearchService, pages: PageCodec) -> None:
        self.service = service
        self.pages = pages

    async def Search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        """Search every entity type at once."""
        q = convert.search_query(request, self.pages)
        caller = current_identity()
        page = await self.service.search(q, caller.subject if caller.authenticated else "")
        return convert.search_response(request, page, self.pages)

    async def Suggest(self, request: pb.SuggestRequest, context: Context) -> pb.SuggestResponse:
        """Complete a typed prefix."""
        v = Violations()
        prefix = checks.check_text(
            v, "prefix", request.prefix, checks.MAX_PREFIX_CHARS, required=True
        )
        types = convert.entity_types(v, "entity_types", request.entity_types)
        limit = checks.check_limit(
            v, "limit", request.limit, checks.DEFAULT_SUGGESTIONS, checks.MAX_SUGGESTIONS
        )
        v.raise_if_any()
        found = await self.service.suggest(prefix, types, limit)
        return pb.SuggestResponse(
            suggestions=[
                pb.Suggestion(
                    text=s.text,
                    entity_type=convert.entity_type_value(s.entity_type),  # type: ignore[arg-type]
                    id=s.id,
                )
                for s in found
            ]
        )

    async def SimilarTo(
        self, request: pb.SimilarToRequest, context: Context
    ) -> pb.SimilarToResponse:
        """Items like a given one."""
        v = Violations()
        entity_type = convert.entity_type_of(v, "entity_type", request.entity_type)
        item_id = checks.check_item_id(v, "id", request.id)
        types = convert.entity_types(v, "result_types", request.result_types)
        limit = checks.check_limit(
            v, "limit", request.limit, checks.DEFAULT_SIMILAR, checks.MAX_SIMILAR
        )
        v.raise_if_any()
        assert entity_type is not None
        hits = await self.service.similar_to(entity_type, item_id, types, limit)
        return pb.SimilarToResponse(hits=[convert.hit_message(h) for h in hits])
