"""The authorization matrix of knowledge products, needs and funding opportunities, through the
real gRPC stack on a real MongoDB (the solutions' matrix is in test_api)."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ssg.catalog import demo
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import funding_pb2, knowledge_product_pb2, need_pb2
from ssg.platform.auth.tokens import Role

from .helpers import CODES, ROLES, as_caller, metadata_for


@cache
def _demo() -> demo.DemoCatalog:
    return demo.generate(solutions=17 * 7, knowledge=1, needs=1, funding=1)


def _owned_by(org: str) -> defaultdict[str, str]:
    """Every demo organization key resolved to org."""
    return defaultdict(lambda: org)


def knowledge_msg(org: str) -> knowledge_product_pb2.KnowledgeProduct:
    """A valid knowledge product of org."""
    return demo.knowledge_message(_demo().knowledge[0], _owned_by(org))


def need_msg(org: str) -> need_pb2.Need:
    """A valid need of org."""
    return demo.need_message(_demo().needs[0], _owned_by(org))


def funding_msg(org: str) -> funding_pb2.FundingOpportunity:
    """A valid funding opportunity of org."""
    return demo.funding_message(_demo().funding[0], _owned_by(org))


TITLE = field_mask_pb2.FieldMask(paths=["title"])


async def record_in(stub, owner, kind: str, org: str, state: str | None) -> Any:
    """A record of org in state, made by its member; None for the commands that create one."""
    if state is None:
        return None
    if kind == "knowledge":
        made = (
            await stub.CreateKnowledgeProduct(
                pb.CreateKnowledgeProductRequest(knowledge_product=knowledge_msg(org)),
                metadata=owner,
                timeout=10,
            )
        ).knowledge_product
        if state == "PUBLISHED":
            made = (
                await stub.PublishKnowledgeProduct(
                    pb.PublishKnowledgeProductRequest(id=made.id, version=made.version),
                    metadata=owner,
                    timeout=10,
                )
            ).knowledge_product
        return made
    if kind == "need":
        return (
            await stub.PostNeed(pb.PostNeedRequest(need=need_msg(org)), metadata=owner, timeout=10)
        ).need
    made = (
        await stub.CreateFundingOpportunity(
            pb.CreateFundingOpportunityRequest(funding_opportunity=funding_msg(org)),
            metadata=owner,
            timeout=10,
        )
    ).funding_opportunity
    if state == "PUBLISHED":
        made = (
            await stub.PublishFundingOpportunity(
                pb.PublishFundingOpportunityRequest(id=made.id, version=made.version),
                metadata=owner,
                timeout=10,
            )
        ).funding_opportunity
    return made


def request_of(command: str, org: str, r: Any) -> Any:
    """The request of a matrix command on record r (or creating one for org)."""
    builders = {
        "CreateKnowledgeProduct": lambda: pb.CreateKnowledgeProductRequest(
            knowledge_product=knowledge_msg(org)
        ),
        "UpdateKnowledgeProduct": lambda: pb.UpdateKnowledgeProductRequest(
            knowledge_product=knowledge_product_pb2.KnowledgeProduct(
                id=r.id, version=r.version, title="A sharper title"
            ),
            update_mask=TITLE,
        ),
        "PublishKnowledgeProduct": lambda: pb.PublishKnowledgeProductRequest(id=r.id),
        "ArchiveKnowledgeProduct": lambda: pb.ArchiveKnowledgeProductRequest(id=r.id),
        "GetKnowledgeProduct": lambda: pb.GetKnowledgeProductRequest(id=r.id),
        "PostNeed": lambda: pb.PostNeedRequest(need=need_msg(org)),
        "UpdateNeed": lambda: pb.UpdateNeedRequest(
            need=need_pb2.Need(id=r.id, version=r.version, title="A sharper title"),
            update_mask=TITLE,
        ),
        "CloseNeed": lambda: pb.CloseNeedRequest(id=r.id, reason="solved locally"),
        "GetNeed": lambda: pb.GetNeedRequest(id=r.id),
        "CreateFundingOpportunity": lambda: pb.CreateFundingOpportunityRequest(
            funding_opportunity=funding_msg(org)
        ),
        "UpdateFundingOpportunity": lambda: pb.UpdateFundingOpportunityRequest(
            funding_opportunity=funding_pb2.FundingOpportunity(
                id=r.id, version=r.version, title="A sharper title"
            ),
            update_mask=TITLE,
        ),
        "PublishFundingOpportunity": lambda: pb.PublishFundingOpportunityRequest(id=r.id),
        "CloseFundingOpportunity": lambda: pb.CloseFundingOpportunityRequest(
            id=r.id, reason="funds committed"
        ),
        "GetFundingOpportunity": lambda: pb.GetFundingOpportunityRequest(id=r.id),
    }
    return builders[command]()


# The record acted on belongs to organization A (verified). Drafts are seen only by their staff
# (N for everyone else); published records and needs are public, so outsiders learn they exist
# and are refused (U without a token, D with one). Reviewers may publish and archive knowledge,
# close needs and funding, but never edit another organization's records; publishing funding is
# its funder's alone.
#        command                 kind        state        anon pub mem oth rev orv ops
MATRIX = [
    ("CreateKnowledgeProduct", "knowledge", None, "U D O D D D O"),
    ("UpdateKnowledgeProduct", "knowledge", "DRAFT", "N N O N D N O"),
    ("PublishKnowledgeProduct", "knowledge", "DRAFT", "N N O N O N O"),
    ("ArchiveKnowledgeProduct", "knowledge", "PUBLISHED", "U D O D O D O"),
    ("GetKnowledgeProduct", "knowledge", "DRAFT", "N N O N O N O"),
    ("GetKnowledgeProduct", "knowledge", "PUBLISHED", "O O O O O O O"),
    ("PostNeed", "need", None, "U D O D D D O"),
    ("UpdateNeed", "need", "OPEN", "U D O D D D O"),
    ("CloseNeed", "need", "OPEN", "U D O D O D O"),
    ("GetNeed", "need", "OPEN", "O O O O O O O"),
    ("CreateFundingOpportunity", "funding", None, "U D O D D D O"),
    ("UpdateFundingOpportunity", "funding", "DRAFT", "N N O N D N O"),
    ("PublishFundingOpportunity", "funding", "DRAFT", "N N O N D N O"),
    ("CloseFundingOpportunity", "funding", "PUBLISHED", "U D O D O D O"),
    ("GetFundingOpportunity", "funding", "DRAFT", "N N O N O N O"),
    ("GetFundingOpportunity", "funding", "PUBLISHED", "O O O O O O O"),
]
CASES = [
    (command, kind, state, role, expected)
    for command, kind, state, row in MATRIX
    for role, expected in zip(ROLES, row.split(), strict=True)
]


@pytest.mark.parametrize(
    ("command", "kind", "state", "role", "expected"),
    CASES,
    ids=[f"{c}-{s or 'new'}-{r}" for c, _, s, r, _ in CASES],
)
async def test_authorization_matrix(served, auth, command, kind, state, role, expected):
    org_a, org_b = served.add_organization(), served.add_organization()
    record = await record_in(served.stub, auth("mem", Role.MEMBER, org=org_a), kind, org_a, state)
    caller = as_caller(served.stub, metadata_for(role, org_a, org_b, auth))
    try:
        await getattr(caller, command)(request_of(command, org_a, record))
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
    assert code == CODES[expected], f"{role} {command} on {state}: {code}"
