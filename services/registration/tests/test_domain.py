"""Domain rules as plain unit tests: no server, no event loop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ssg.platform.auth.tokens import ANONYMOUS, Identity, Role
from ssg.platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
)
from ssg.registration.domain import authorization as authz
from ssg.registration.domain import members as member_rules
from ssg.registration.domain import organizations as rules
from ssg.registration.domain.duplicates import find_duplicates, normalize_name, website_domain
from ssg.registration.domain.model import (
    EDITABLE_ORGANIZATION_FIELDS,
    Expert,
    ExpertProfile,
    ExpertVisibility,
    Member,
    MemberRole,
    Organization,
    OrganizationProfile,
    OrganizationStatus,
    OrganizationType,
)
from ssg.registration.domain.validation import (
    ExpertDraft,
    OrganizationDraft,
    organization_draft_of,
    validate_expert,
    validate_member_role,
    validate_organization,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)
REVIEWER = Identity("rev", frozenset({Role.PUBLIC, Role.REVIEWER}), instance="africa")
OPERATOR = Identity("ops", frozenset({Role.PUBLIC, Role.OPERATOR}), instance="africa")
PUBLIC = Identity("pat")


def draft(**fields) -> OrganizationDraft:
    values = {"name": "Green Schools Network", "type": "NGO", "headquarters_country": "KEN"}
    return OrganizationDraft(**{**values, **fields})


def profile(**fields) -> OrganizationProfile:
    return validate_organization(draft(**fields))


def organization(status=OrganizationStatus.PENDING, org_id="o1", **fields) -> Organization:
    org = rules.register(org_id, profile(**fields), "africa", PUBLIC, NOW).organization
    return replace(org, status=status)


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {v.field for v in exc.value.violations}


# -- validation -------------------------------------------------------------------------------


def test_a_valid_draft_becomes_a_trimmed_profile():
    p = profile(
        name="  Green Schools Network ",
        acronym="GSN",
        operating_countries=["KEN", "UGA"],
        regions=["AFRICA"],
        sdgs=[4, 13, 4][:2],
        website="https://gsn.example.org/about",
        contact_email="hello@gsn.example.org",
        languages=["en", "sw"],
    )
    assert p.name == "Green Schools Network"
    assert p.type is OrganizationType.NGO
    assert p.sdgs == (4, 13)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "organization.name"),
        ({"name": "A"}, "organization.name"),
        ({"name": "A" * 201}, "organization.name"),
        ({"name": "Bad\x00name"}, "organization.name"),
        ({"acronym": "A" * 31}, "organization.acronym"),
        ({"type": ""}, "organization.type"),
        ({"type": "#42"}, "organization.type"),
        ({"headquarters_country": ""}, "organization.headquarters_country"),
        ({"headquarters_country": "XXX"}, "organization.headquarters_country"),
        ({"headquarters_country": "KE"}, "organization.headquarters_country"),
        ({"operating_countries": ["KEN", "KEN"]}, "organization.operating_countries"),
        ({"operating_countries": ["KEN"] * 251}, "organization.operating_countries"),
        ({"regions": ["#9"]}, "organization.regions[0]"),
        ({"sdgs": [0]}, "organization.sdgs[0]"),
        ({"sdgs": [18]}, "organization.sdgs[0]"),
        ({"sdgs": [3, 3]}, "organization.sdgs"),
        ({"website": "javascript:alert(1)"}, "organization.website"),
        ({"website": "https://localhost"}, "organization.website"),
        ({"website": "https://exa_mple.org"}, "organization.website"),
        ({"website": "https://example.org:99999"}, "organization.website"),
        ({"website": "https://" + "a" * 2050 + ".org"}, "organization.website"),
        ({"contact_email": "no-at-sign"}, "organization.contact_email"),
        ({"contact_email": "a b@example.org"}, "organization.contact_email"),
        ({"contact_email": "x@" + "a" * 260 + ".org"}, "organization.contact_email"),
        ({"description": "x" * 5001}, "organization.description"),
        ({"languages": ["EN"]}, "organization.languages[0]"),
        ({"languages": ["xx"]}, "organization.languages[0]"),
        ({"languages": ["en"] * 21}, "organization.languages"),
        ({"parent_organization_id": "not an id!"}, "organization.parent_organization_id"),
    ],
)
def test_each_bad_field_is_named(fields, field):
    with pytest.raises(ValidationError) as exc:
        validate_organization(draft(**fields))
    assert field in fields_of(exc)


def test_limits_are_inclusive():
    assert profile(name="AB").name == "AB"
    assert profile(name="A" * 200).name == "A" * 200
    assert len(profile(description="line\n" * 1000).description) <= 5000


def test_all_violations_are_reported_together():
    with pytest.raises(ValidationError) as exc:
        validate_organization(OrganizationDraft(sdgs=[99], contact_email="x"))
    assert fields_of(exc) == {
        "organization.name",
        "organization.type",
        "organization.headquarters_country",
        "organization.sdgs[0]",
        "organization.contact_email",
    }


def test_expert_validation():
    ok = validate_expert(
        ExpertDraft(display_name="Dr Amina", visibility="HIDDEN", expertise_areas=["irrigation"])
    )
    assert ok.visibility is ExpertVisibility.HIDDEN
    with pytest.raises(ValidationError) as exc:
        validate_expert(
            ExpertDraft(
                display_name="",
                visibility="",
                expertise_areas=["x", "ok area", "OK AREA"],
                countries=["ATL"],
            )
        )
    assert fields_of(exc) == {
        "expert.display_name",
        "expert.visibility",
        "expert.expertise_areas[0]",
        "expert.expertise_areas",
        "expert.countries[0]",
    }


def test_member_role_is_required():
    assert validate_member_role("ADMIN") is MemberRole.ADMIN
    with pytest.raises(ValidationError):
        validate_member_role("")


def test_a_profile_round_trips_through_its_draft():
    p = profile(regions=["ASIA_PACIFIC"], sdgs=[1, 2], languages=["fr"])
    assert validate_organization(organization_draft_of(p)) == p


# -- lifecycle --------------------------------------------------------------------------------


def test_registration_is_pending_version_one_and_audited():
    change = rules.register("o1", profile(), "africa", PUBLIC, NOW)
    assert change.organization.status is OrganizationStatus.PENDING
    assert change.organization.version == 1
    assert change.audit.action == "registered"
    assert change.audit.actor == "pat"
    assert change.audit.from_status is None


def test_verify_sets_the_verification_period_and_audits_who_and_why():
    change = rules.verify(
        organization(), REVIEWER, NOW, timedelta(days=30), "checked", "registry entry 42"
    )
    org = change.organization
    assert org.status is OrganizationStatus.VERIFIED
    assert org.version == 2
    assert org.verified_at == NOW
    assert org.verification_expires_at == NOW + timedelta(days=30)
    assert change.audit.actor == "rev"
    assert change.audit.actor_roles == ("public", "reviewer")
    assert change.audit.evidence_note == "registry entry 42"
    assert (change.audit.from_status, change.audit.to_status) == (
        OrganizationStatus.PENDING,
        OrganizationStatus.VERIFIED,
    )


def test_reject_is_only_for_pending_and_terminal():
    rejected = rules.reject(organization(), REVIEWER, NOW, "not real").organization
    assert rejected.status is OrganizationStatus.REJECTED
    assert rejected.status_reason == "not real"
    for transition in (
        lambda o: rules.verify(o, REVIEWER, NOW),
        lambda o: rules.suspend(o, REVIEWER, NOW, "x"),
        lambda o: rules.reject(o, REVIEWER, NOW, "x"),
        lambda o: rules.update(o, profile(name="Other"), REVIEWER, NOW),
    ):
        with pytest.raises(rules.InvalidTransition):
            transition(rejected)


def test_suspend_then_verify_again():
    verified = rules.verify(organization(), REVIEWER, NOW).organization
    suspended = rules.suspend(verified, REVIEWER, NOW, "complaint").organization
    assert suspended.status is OrganizationStatus.SUSPENDED
    with pytest.raises(rules.InvalidTransition):
        rules.suspend(suspended, REVIEWER, NOW, "again")
    again = rules.verify(suspended, REVIEWER, NOW + timedelta(days=1))
    assert again.organization.status is OrganizationStatus.VERIFIED
    assert again.organization.status_reason == ""
    assert again.audit.action == "verified"


def test_pending_cannot_be_suspended():
    with pytest.raises(FailedPrecondition):
        rules.suspend(organization(), REVIEWER, NOW, "x")


def test_verification_expires_once_and_reconfirmation_clears_the_flag():
    verified = rules.verify(organization(), REVIEWER, NOW, timedelta(days=730)).organization
    assert not rules.verification_due(verified, NOW + timedelta(days=729))
    later = NOW + timedelta(days=730)
    assert rules.verification_due(verified, later)
    expired = rules.expire(verified, later)
    assert expired.organization.reconfirmation_required
    assert expired.organization.status is OrganizationStatus.VERIFIED
    assert expired.audit.actor == rules.SYSTEM_ACTOR
    assert not rules.verification_due(expired.organization, later)
    with pytest.raises(rules.InvalidTransition):
        rules.expire(expired.organization, later)
    reconfirmed = rules.verify(expired.organization, REVIEWER, later)
    assert reconfirmed.audit.action == "reconfirmed"
    assert not reconfirmed.organization.reconfirmation_required
    assert (
        reconfirmed.organization.verification_expires_at
        == later + rules.DEFAULT_VERIFICATION_PERIOD
    )


def test_update_bumps_the_version_only_when_something_changed():
    org = organization()
    assert rules.update(org, org.profile, PUBLIC, NOW) is None
    outcome = rules.update(org, profile(name="Green Schools Net", sdgs=[4]), PUBLIC, NOW)
    assert outcome is not None
    change, changed = outcome
    assert changed == ("name", "sdgs")
    assert change.organization.version == 2
    assert change.audit.reason == "changed: name, sdgs"


def test_merge_draft_takes_only_masked_fields_and_refuses_unknown_ones():
    current = organization_draft_of(profile())
    incoming = OrganizationDraft(name="New Name")  # the other fields are unset on purpose
    merged = rules.merge_draft(current, incoming, ("name",), EDITABLE_ORGANIZATION_FIELDS)
    assert merged.name == "New Name"
    assert merged.type == "NGO"
    with pytest.raises(ValidationError) as exc:
        rules.merge_draft(current, incoming, ("status",), EDITABLE_ORGANIZATION_FIELDS)
    assert fields_of(exc) == {"update_mask"}


def test_merge_rules():
    source = organization(org_id="s")
    target = organization(OrganizationStatus.VERIFIED, org_id="t")
    change = rules.merge(source, target, REVIEWER, NOW, "same body")
    assert change.organization.status is OrganizationStatus.MERGED
    assert change.organization.merged_into == "t"
    with pytest.raises(ValidationError):
        rules.merge(source, source, REVIEWER, NOW)
    with pytest.raises(FailedPrecondition):
        rules.merge(change.organization, target, REVIEWER, NOW)
    rejected = organization(OrganizationStatus.REJECTED, org_id="r")
    with pytest.raises(FailedPrecondition):
        rules.merge(source, rejected, REVIEWER, NOW)


# -- duplicates -------------------------------------------------------------------------------


def test_names_are_normalized_for_matching():
    assert normalize_name("The Ministry of Health, Kenya") == "ministry health kenya"
    assert normalize_name("Fundación Éxito") == "fundacion exito"


def test_website_domains_ignore_www_and_shared_hosts():
    assert website_domain("https://www.Example.org/about") == "example.org"
    assert website_domain("https://someone.github.io") == ""
    assert website_domain("") == ""


def test_similar_name_in_the_same_country_is_a_candidate():
    existing = [
        organization(org_id="a", name="Kenya Ministry of Health"),
        organization(org_id="b", name="Kenya Ministry of Energy"),
        organization(org_id="c", name="Ministry of Health Kenya", headquarters_country="UGA"),
    ]
    found = find_duplicates(profile(name="Ministry of Health of Kenya"), existing)
    assert [c.organization_id for c in found] == ["a"]
    assert found[0].reasons == ("similar name in the same country",)


def test_same_acronym_same_country_and_same_domain_anywhere():
    existing = [
        organization(org_id="a", name="Alpha Institute", acronym="AGI"),
        organization(
            org_id="b", name="Beta", headquarters_country="PER", website="https://www.agi.org"
        ),
    ]
    found = find_duplicates(
        profile(name="Agri Growth Initiative", acronym="agi", website="https://agi.org/x"),
        existing,
    )
    reasons = {c.organization_id: c.reasons for c in found}
    assert reasons == {
        "a": ("same acronym in the same country",),
        "b": ("same website domain",),
    }


def test_a_different_organization_is_no_candidate():
    existing = [organization(org_id="a", name="Lake Victoria Fisheries Board")]
    assert find_duplicates(profile(name="Nairobi Coding Academy"), existing) == ()


# -- members ----------------------------------------------------------------------------------


def member(user: str, role: MemberRole = MemberRole.MEMBER) -> Member:
    return Member("o1", user, role, "adm", NOW)


def test_the_last_admin_cannot_be_removed():
    org = organization()
    admin = member("adm", MemberRole.ADMIN)
    with pytest.raises(FailedPrecondition):
        member_rules.check_removal(org, admin, [admin, member("m")], "adm")
    second = member("adm2", MemberRole.ADMIN)
    assert member_rules.check_removal(org, admin, [admin, second], "adm") is admin
    assert member_rules.check_removal(org, member("m"), [admin, member("m")], "m").user_id == "m"
    with pytest.raises(NotFound):
        member_rules.check_removal(org, None, [admin], "ghost")


def test_adding_twice_or_to_a_closed_organization_fails():
    org = organization()
    added = member_rules.add_member(org, None, "m", MemberRole.MEMBER, OPERATOR, NOW)
    assert added.added_by == "ops"
    with pytest.raises(AlreadyExists):
        member_rules.add_member(org, added, "m", MemberRole.MEMBER, OPERATOR, NOW)
    with pytest.raises(FailedPrecondition):
        member_rules.add_member(
            replace(org, status=OrganizationStatus.MERGED),
            None,
            "m",
            MemberRole.MEMBER,
            OPERATOR,
            NOW,
        )


def test_merged_memberships_skip_people_already_in_the_target():
    moved = member_rules.merged_memberships(
        [member("a", MemberRole.ADMIN), member("b")],
        [Member("t", "b", MemberRole.ADMIN, "x", NOW)],
        "t",
    )
    assert [(m.organization_id, m.user_id, m.role) for m in moved] == [("t", "a", MemberRole.ADMIN)]


# -- authorization ----------------------------------------------------------------------------


def test_public_sees_only_verified_organizations():
    pending = organization()
    verified = replace(pending, status=OrganizationStatus.VERIFIED)
    assert not authz.can_see_organization(ANONYMOUS, pending)
    assert authz.can_see_organization(ANONYMOUS, verified)
    own = Identity("m", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id="o1")
    # The Member record makes a member, not the token's org claim.
    assert authz.can_see_organization(own, pending, member("m"))
    assert not authz.can_see_organization(own, pending)
    assert authz.can_see_organization(Identity("m"), pending, member("m"))  # no claim needed
    assert not authz.can_see_organization(Identity("x"), pending, member("m"))  # not theirs
    assert authz.can_see_organization(REVIEWER, pending)
    elsewhere = replace(REVIEWER, instance="asia-pacific")
    assert not authz.can_see_organization(elsewhere, pending)
    with pytest.raises(NotFound):
        authz.require_visible_organization(ANONYMOUS, pending, "o1")


def test_operators_act_only_in_their_own_instance():
    org = organization()
    here = authz.bound_to_instance(OPERATOR, "africa")
    assert here is OPERATOR
    authz.authorize_organization(here, authz.Action.REVIEW_ORGANIZATION, org)
    for instance in ("asia-pacific", ""):
        foreign = authz.bound_to_instance(replace(OPERATOR, instance=instance), "africa")
        assert not authz.is_operator(foreign)
        assert foreign.authenticated and foreign.subject == "ops"
        with pytest.raises(PermissionDenied):
            authz.authorize_organization(foreign, authz.Action.REVIEW_ORGANIZATION, org)
        assert not authz.can_see_organization(foreign, org)


def test_reviewers_act_only_in_their_own_instance():
    org = organization()
    authz.authorize_organization(REVIEWER, authz.Action.REVIEW_ORGANIZATION, org)
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(
            replace(REVIEWER, instance="asia-pacific"), authz.Action.REVIEW_ORGANIZATION, org
        )
    # A reviewer token without an instance acts nowhere.
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(
            replace(REVIEWER, instance=""), authz.Action.REVIEW_ORGANIZATION, org
        )


def test_members_edit_their_own_organization_and_only_admins_manage_members():
    org = organization()
    own = Identity("m", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id="o1")
    authz.authorize_organization(own, authz.Action.UPDATE_ORGANIZATION, org, member("m"))
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(own, authz.Action.REVIEW_ORGANIZATION, org, member("m"))
    # A token naming the organization without a Member record is nobody's member.
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(own, authz.Action.UPDATE_ORGANIZATION, org)
    # Someone else's record does not count either.
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(
            own, authz.Action.UPDATE_ORGANIZATION, org, member("x", MemberRole.ADMIN)
        )
    # The registrant's token has no org claim; their record is enough.
    authz.authorize_organization(
        Identity("m"), authz.Action.MANAGE_MEMBERS, org, member("m", MemberRole.ADMIN)
    )
    with pytest.raises(PermissionDenied):
        authz.authorize_organization(own, authz.Action.MANAGE_MEMBERS, org, member("m"))
    authz.authorize_organization(
        own, authz.Action.MANAGE_MEMBERS, org, member("m", MemberRole.ADMIN)
    )
    with pytest.raises(Unauthenticated):
        authz.authorize_organization(ANONYMOUS, authz.Action.UPDATE_ORGANIZATION, org)
    for action in authz.Action:
        authz.authorize_organization(OPERATOR, action, org)


def expert(visibility: ExpertVisibility, owner: str = "owner") -> Expert:
    return Expert("e1", ExpertProfile("Dr X", visibility), owner, "africa", 1, NOW, NOW)


@pytest.mark.parametrize(
    ("visibility", "anonymous", "member_", "reviewer", "other_reviewer", "owner"),
    [
        (ExpertVisibility.PUBLIC, True, True, True, True, True),
        (ExpertVisibility.MEMBERS_ONLY, False, True, True, True, True),
        (ExpertVisibility.HIDDEN, False, False, True, False, True),
    ],
)
def test_expert_visibility(visibility, anonymous, member_, reviewer, other_reviewer, owner):
    e = expert(visibility)
    member_identity = Identity("m", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id="o9")
    assert authz.can_see_expert(ANONYMOUS, e) is anonymous
    assert authz.can_see_expert(member_identity, e) is member_
    assert authz.can_see_expert(REVIEWER, e) is reviewer
    assert authz.can_see_expert(replace(REVIEWER, instance="asia-pacific"), e) is other_reviewer
    assert authz.can_see_expert(Identity("owner"), e) is owner
    assert authz.can_see_expert(OPERATOR, e)


def test_list_scopes_mirror_visibility():
    assert authz.organization_scopes(ANONYMOUS) == (authz.Scope(frozenset({"VERIFIED"})),)
    assert authz.organization_scopes(OPERATOR) == (authz.Scope(authz.ALL_ORG_STATUSES),)
    assert authz.Scope(authz.ALL_ORG_STATUSES, instance="africa") in authz.organization_scopes(
        REVIEWER
    )
    assert authz.expert_scopes(ANONYMOUS) == (authz.Scope(frozenset({"PUBLIC"})),)
    assert authz.Scope(authz.ALL_VISIBILITIES, owner="pat") in authz.expert_scopes(PUBLIC)


def test_viewing_a_verified_organization_reads_membership_only_when_the_token_names_it():
    verified = organization(OrganizationStatus.VERIFIED, org_id="o1")
    pending = organization(OrganizationStatus.PENDING, org_id="o1")
    stranger = Identity("s", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id="o2")
    claimant = Identity("c", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id="o1")
    assert not authz.needs_membership_to_view(stranger, verified)
    assert authz.needs_membership_to_view(claimant, verified)
    # A pending organization is visible only to its people: the record must be read.
    assert authz.needs_membership_to_view(stranger, pending)
    assert not authz.needs_membership_to_view(OPERATOR, pending)
    assert not authz.needs_membership_to_view(ANONYMOUS, verified)
