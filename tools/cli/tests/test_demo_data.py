"""The registration demo data: deterministic, broad, valid by the service's own rules, and with
near-duplicates the duplicate guard catches (no servers needed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.registration import demo, mapping
from ssg.registration.domain.duplicates import find_duplicates
from ssg.registration.domain.model import (
    ExpertVisibility,
    Organization,
    OrganizationStatus,
    OrganizationType,
    Region,
)
from ssg.registration.domain.validation import validate_expert, validate_organization

DATA = demo.generate()


def test_counts_and_unique_keys_names_and_websites() -> None:
    orgs = DATA.organizations
    assert len(orgs) >= 300
    assert len(DATA.experts) >= 60
    assert len({o.key for o in orgs}) == len(orgs)
    assert len({o.draft.name.casefold() for o in orgs}) == len(orgs)
    websites = [o.draft.website for o in orgs if o.draft.website]
    # Only the same-website near-duplicates share a site with their original.
    same_site = [o for o in orgs if o.duplicate_of and o.draft.website]
    assert len(websites) - len(set(websites)) == len(same_site)


def test_every_type_in_every_region_and_every_instance() -> None:
    pairs = {
        (o.draft.type, demo.region_of(o.draft.headquarters_country).value)
        for o in DATA.organizations
    }
    for org_type in OrganizationType:
        for region in Region:
            assert (org_type.value, region.value) in pairs, (org_type, region)
    assert {r for o in DATA.organizations for r in o.draft.regions} == {r.value for r in Region}
    assert {o.home_instance for o in DATA.organizations} == set(demo.INSTANCES)
    assert len(demo.INSTANCES) == 5


def test_every_record_passes_the_services_validation() -> None:
    for org in DATA.organizations:
        profile = validate_organization(org.draft)
        # Some near-duplicates leave website and email out, as hurried registrants do.
        if profile.website or not org.duplicate_of:
            assert profile.website.startswith("https://")
            assert profile.website.endswith(".example.org")
        if profile.contact_email or not org.duplicate_of:
            assert profile.contact_email.endswith(".example.org")
        assert profile.sdgs and profile.languages and profile.description
        assert profile.headquarters_country in profile.operating_countries
    for expert in DATA.experts:
        validate_expert(expert.draft)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    assert demo.generate() == DATA
    other = demo.generate(seed=7)
    assert [o.draft.name for o in other.organizations] != [o.draft.name for o in DATA.organizations]
    assert (
        demo.generate(seed=7, organizations=100, experts=5).organizations[0]
        == (demo.generate(seed=7, organizations=100, experts=5).organizations[0])
    )
    with pytest.raises(ValueError, match="at least"):
        demo.generate(organizations=50)


def test_status_mix_and_expert_visibility_mix() -> None:
    statuses = Counter(o.target_status for o in DATA.organizations)
    total = len(DATA.organizations)
    assert statuses[OrganizationStatus.VERIFIED] > total / 2
    for status in (
        OrganizationStatus.PENDING,
        OrganizationStatus.REJECTED,
        OrganizationStatus.SUSPENDED,
    ):
        assert statuses[status] >= 3, status
    for org in DATA.organizations:
        if org.target_status in (OrganizationStatus.REJECTED, OrganizationStatus.SUSPENDED):
            assert org.status_reason
    assert {e.draft.visibility for e in DATA.experts} == {v.value for v in ExpertVisibility}


def test_references_point_backwards() -> None:
    """Parents, originals and affiliations come before what refers to them (seeding order)."""
    position = {o.key: i for i, o in enumerate(DATA.organizations)}
    children = [o for o in DATA.organizations if o.parent_key]
    assert children
    for org in DATA.organizations:
        for ref in (org.parent_key, org.duplicate_of):
            if ref:
                assert position[ref] < position[org.key]
    assert all(DATA.organization(o.parent_key).draft.type == "UN_ENTITY" for o in children)
    affiliated = [e for e in DATA.experts if e.affiliation_key]
    assert affiliated and all(e.affiliation_key in position for e in affiliated)


def test_near_duplicates_are_caught_by_the_duplicate_guard() -> None:
    now = datetime.now(UTC)
    duplicates = [o for o in DATA.organizations if o.duplicate_of]
    assert len(duplicates) >= 3
    for org in duplicates:
        original = DATA.organization(org.duplicate_of)
        stored = Organization(
            "original-id",
            validate_organization(original.draft),
            "global",
            OrganizationStatus.VERIFIED,
            1,
            now,
            now,
        )
        found = find_duplicates(validate_organization(org.draft), [stored])
        assert [c.organization_id for c in found] == ["original-id"], org.draft.name


def test_requests_carry_the_key_and_map_back_to_the_draft() -> None:
    org = next(o for o in DATA.organizations if o.parent_key)
    request = demo.organization_request(org, parent_id="parent123")
    assert isinstance(request, pb.RegisterOrganizationRequest)
    assert request.request_id == org.key
    back = mapping.organization_draft(request.organization)
    assert back.parent_organization_id == "parent123"
    assert validate_organization(back) == validate_organization(
        replace(org.draft, parent_organization_id="parent123")
    )
    expert = DATA.experts[0]
    expert_request = demo.expert_request(expert, affiliation_id="org42")
    assert expert_request.request_id == expert.key
    assert validate_expert(mapping.expert_draft(expert_request.expert)).display_name == (
        expert.draft.display_name
    )
