"""Validation of every input field: raw drafts in, validated profiles out, or a ValidationError
naming each bad field (with a dotted path such as ``organization.name``) and why."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from ssg.platform.errors import FieldViolation, ValidationError, Violations
from ssg.platform.reference.geography import is_country
from ssg.platform.validation import check_id, check_unique, is_language, require_id
from ssg.registration.domain.model import (
    ExpertProfile,
    ExpertVisibility,
    MemberRole,
    OrganizationProfile,
    OrganizationType,
    Region,
)

NAME_MIN, NAME_MAX = 2, 200
ACRONYM_MAX = 30
DESCRIPTION_MAX = 5000
URL_MAX = 2048
EMAIL_MAX = 254
NOTE_MAX = 2000
USER_ID_MAX = 200
REQUEST_ID_MAX = 128
MAX_COUNTRIES = 250
MAX_LANGUAGES = 20
MAX_EXPERTISE = 20
MAX_SDGS = 17  # there are 17 goals, and each may be named once
MAX_REGIONS = len(Region)
EXPERTISE_MIN, EXPERTISE_MAX = 2, 100
# A reply lists at most MAX_VIOLATIONS violations of at most VIOLATION_TEXT_MAX characters in
# all (then one "and N more"), and quotes at most ECHO_MAX characters of what the caller sent:
# 200,000 bad values must not become a multi-megabyte error that the client cannot receive.
# The text budget is what keeps the reply under a gRPC client's default 8 KiB (soft) metadata
# limit: the text travels about four times (grpc-message, and in grpc-status-details-bin,
# base64, the status message again plus the BadRequest detail).
MAX_VIOLATIONS = 50
VIOLATION_TEXT_MAX = 1500
ECHO_MAX = 64

# Deliberately simple: one @, a dotted domain, no spaces or control characters. Full RFC 5322
# acceptance is neither needed nor wanted for a public contact address.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]+\Z")
StrEnumT = TypeVar("StrEnumT", bound=StrEnum)


class BoundedViolations(Violations):
    """Violations that keep the first MAX_VIOLATIONS (within VIOLATION_TEXT_MAX characters)
    and count the rest, reported as one final violation ("and N more"), so the error stays
    small whatever the input."""

    def __init__(self, limit: int = MAX_VIOLATIONS, text_limit: int = VIOLATION_TEXT_MAX) -> None:
        super().__init__()
        self._limit = limit
        self._text_left = text_limit
        self._dropped = 0
        self._kept = 0

    def check(self, condition: bool, field: str, reason: str) -> bool:
        """Record a violation of field when condition is false; return condition."""
        if not condition:
            self.add(field, reason)
        return condition

    def add(self, field: str, reason: str) -> None:
        """Record a violation, or only count it once the limits are reached."""
        size = len(field) + len(reason)
        if self._kept >= self._limit or size > self._text_left:
            self._dropped += 1
            self._text_left = 0  # keep the listed ones a prefix: no later, shorter one
            return
        self._kept += 1
        self._text_left -= size
        super().add(field, reason)

    @property
    def items(self) -> tuple[FieldViolation, ...]:
        """The recorded violations, plus one that counts those left out."""
        kept = super().items
        if not self._dropped:
            return kept
        more = FieldViolation("request", f"and {self._dropped} more violations not listed")
        return (*kept, more)

    def __bool__(self) -> bool:
        return self._kept > 0

    def __len__(self) -> int:
        return self._kept + self._dropped

    def raise_if_any(self) -> None:
        """Raise ValidationError carrying the recorded violations, if there is one."""
        if self:
            raise ValidationError(self.items)


def echo(value: object) -> str:
    """value as quoted in a violation: repr, cut to ECHO_MAX characters."""
    text = repr(value)
    return text if len(text) <= ECHO_MAX else text[: ECHO_MAX - 3] + "..."


def check_count(
    v: Violations, path: str, values: Sequence[object], maximum: int, what: str
) -> bool:
    """False (and a violation naming path and the limit) when values holds more than maximum
    items: checked before any item, so an oversized list costs one violation, not one each."""
    if len(values) > maximum:
        v.add(path, f"must hold at most {maximum} {what}, got {len(values)}")
        return False
    return True


@dataclass(frozen=True)
class OrganizationDraft:
    """Organization fields as a caller sent them, before any check.

    Enum fields hold the value's name (``"NGO"``), ``""`` when unset, or ``"#<n>"`` for a
    number the contract does not define, so that validation can report it by field.
    """

    name: str = ""
    acronym: str = ""
    type: str = ""
    headquarters_country: str = ""
    operating_countries: Sequence[str] = ()
    regions: Sequence[str] = ()
    sdgs: Sequence[int] = ()
    website: str = ""
    contact_email: str = ""
    description: str = ""
    languages: Sequence[str] = ()
    parent_organization_id: str = ""


@dataclass(frozen=True)
class ExpertDraft:
    """Expert fields as a caller sent them (enum convention as in OrganizationDraft)."""

    display_name: str = ""
    visibility: str = ""
    expertise_areas: Sequence[str] = ()
    sdgs: Sequence[int] = ()
    languages: Sequence[str] = ()
    countries: Sequence[str] = ()
    affiliation_organization_id: str = ""
    affiliation: str = ""
    biography: str = ""


def _clean(text: str) -> str:
    """Text as stored: surrounding white space removed."""
    return text.strip()


def _has_control_chars(text: str, allow_newlines: bool = False) -> bool:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    return any(ord(c) < 32 and c not in allowed for c in text)


def check_text(
    v: Violations,
    path: str,
    value: str,
    *,
    minimum: int = 0,
    maximum: int,
    multiline: bool = False,
) -> str:
    """Check a text field's length (after trimming) and characters; return it trimmed."""
    text = _clean(value)
    if minimum and not text:
        v.add(path, "is required")
    elif len(text) < minimum or len(text) > maximum:
        v.add(path, f"must be {minimum} to {maximum} characters, got {len(text)}")
    elif _has_control_chars(text, allow_newlines=multiline):
        v.add(path, "must not contain control characters")
    return text


def check_url(v: Violations, path: str, value: str) -> str:
    """An optional absolute http(s) URL with a plausible host; return it trimmed."""
    url = _clean(value)
    if not url:
        return ""
    if len(url) > URL_MAX:
        v.add(path, f"must be at most {URL_MAX} characters, got {len(url)}")
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        v.add(path, "is not a valid URL")
        return url
    if parts.scheme not in ("http", "https"):
        v.add(path, "must be an http or https URL")
    elif not _valid_host(host) or any(c.isspace() for c in url):
        v.add(path, "must be an absolute URL with a valid host name, e.g. https://example.org")
    return url


def _valid_host(host: str) -> bool:
    labels = host.split(".")
    return len(labels) >= 2 and all(_HOST_LABEL.match(label) for label in labels)


def check_email(v: Violations, path: str, value: str) -> str:
    """An optional email address; return it trimmed."""
    email = _clean(value)
    if not email:
        return ""
    if len(email) > EMAIL_MAX:
        v.add(path, f"must be at most {EMAIL_MAX} characters, got {len(email)}")
    elif not _EMAIL.match(email):
        v.add(path, "is not a valid email address (expected name@domain.tld)")
    return email


def check_countries(
    v: Violations, path: str, values: Sequence[str], maximum: int = MAX_COUNTRIES
) -> tuple[str, ...]:
    """ISO 3166-1 alpha-3 codes (upper case), at most maximum, no repeats."""
    if not check_count(v, path, values, maximum, "countries"):
        return ()
    for i, code in enumerate(values):
        if not is_country(code):
            v.add(f"{path}[{i}]", f"{echo(code)} is not an ISO 3166-1 alpha-3 country code")
    check_unique(v, path, values)
    return tuple(values)


def check_country(v: Violations, path: str, code: str, *, required: bool) -> str:
    """One ISO 3166-1 alpha-3 code (upper case)."""
    if not code:
        if required:
            v.add(path, "is required (ISO 3166-1 alpha-3, e.g. KEN)")
    elif not is_country(code):
        v.add(path, f"{echo(code)} is not an ISO 3166-1 alpha-3 country code")
    return code


def check_sdgs(v: Violations, path: str, values: Sequence[int]) -> tuple[int, ...]:
    """SDG goal numbers 1-17, at most 17, no repeats."""
    if not check_count(v, path, values, MAX_SDGS, "goals"):
        return ()
    for i, goal in enumerate(values):
        if not 1 <= goal <= 17:
            v.add(f"{path}[{i}]", f"SDG must be 1 to 17, got {goal}")
    check_unique(v, path, values)
    return tuple(sorted(set(values)))


def check_languages(v: Violations, path: str, values: Sequence[str]) -> tuple[str, ...]:
    """ISO 639-1 codes (lower case), at most MAX_LANGUAGES, no repeats."""
    if not check_count(v, path, values, MAX_LANGUAGES, "languages"):
        return ()
    for i, code in enumerate(values):
        if not is_language(code):
            v.add(f"{path}[{i}]", f"{echo(code)} is not an ISO 639-1 language code, e.g. 'en'")
    check_unique(v, path, values)
    return tuple(values)


def check_request_id(v: Violations, path: str, value: str) -> str:
    """An optional client request id: 1-128 characters of [A-Za-z0-9_.:-]."""
    if value and (len(value) > REQUEST_ID_MAX or not _REQUEST_ID.match(value)):
        v.add(path, f"must be 1 to {REQUEST_ID_MAX} characters of A-Z a-z 0-9 _ . : -")
    return value


def _enum(v: Violations, path: str, value: str, enum: type[StrEnumT], what: str) -> StrEnumT:
    try:
        return enum(value)
    except ValueError:
        if not value:
            v.add(path, f"is required ({what})")
        else:
            v.add(path, f"unknown {what} {echo(value.lstrip('#'))}")
        return next(iter(enum))  # placeholder; the violation is raised before it is used


def validate_organization(
    draft: OrganizationDraft, prefix: str = "organization"
) -> OrganizationProfile:
    """A validated profile from draft; ValidationError naming every bad field otherwise."""
    v = BoundedViolations()
    p = f"{prefix}."
    name = check_text(v, p + "name", draft.name, minimum=NAME_MIN, maximum=NAME_MAX)
    acronym = check_text(v, p + "acronym", draft.acronym, maximum=ACRONYM_MAX)
    org_type = _enum(v, p + "type", draft.type, OrganizationType, "organization type")
    hq = check_country(v, p + "headquarters_country", draft.headquarters_country, required=True)
    countries = check_countries(v, p + "operating_countries", draft.operating_countries)
    regions: list[Region] = []
    if check_count(v, p + "regions", draft.regions, MAX_REGIONS, "regions"):
        for i, region in enumerate(draft.regions):
            regions.append(_enum(v, f"{p}regions[{i}]", region, Region, "region"))
        check_unique(v, p + "regions", regions)
    sdgs = check_sdgs(v, p + "sdgs", draft.sdgs)
    website = check_url(v, p + "website", draft.website)
    email = check_email(v, p + "contact_email", draft.contact_email)
    description = check_text(
        v, p + "description", draft.description, maximum=DESCRIPTION_MAX, multiline=True
    )
    languages = check_languages(v, p + "languages", draft.languages)
    parent = check_id(v, p + "parent_organization_id", draft.parent_organization_id, required=False)
    v.raise_if_any()
    return OrganizationProfile(
        name=name,
        acronym=acronym,
        type=org_type,
        headquarters_country=hq,
        operating_countries=countries,
        regions=tuple(regions),
        sdgs=sdgs,
        website=website,
        contact_email=email,
        description=description,
        languages=languages,
        parent_organization_id=parent,
    )


def validate_expert(draft: ExpertDraft, prefix: str = "expert") -> ExpertProfile:
    """A validated expert profile from draft; ValidationError naming every bad field otherwise."""
    v = BoundedViolations()
    p = f"{prefix}."
    name = check_text(v, p + "display_name", draft.display_name, minimum=NAME_MIN, maximum=NAME_MAX)
    visibility = _enum(v, p + "visibility", draft.visibility, ExpertVisibility, "visibility")
    areas: list[str] = []
    if check_count(v, p + "expertise_areas", draft.expertise_areas, MAX_EXPERTISE, "areas"):
        for i, area in enumerate(draft.expertise_areas):
            areas.append(
                check_text(
                    v,
                    f"{p}expertise_areas[{i}]",
                    area,
                    minimum=EXPERTISE_MIN,
                    maximum=EXPERTISE_MAX,
                )
            )
        check_unique(v, p + "expertise_areas", [a.casefold() for a in areas])
    sdgs = check_sdgs(v, p + "sdgs", draft.sdgs)
    languages = check_languages(v, p + "languages", draft.languages)
    countries = check_countries(v, p + "countries", draft.countries)
    affiliation_id = check_id(
        v, p + "affiliation_organization_id", draft.affiliation_organization_id, required=False
    )
    affiliation = check_text(v, p + "affiliation", draft.affiliation, maximum=NAME_MAX)
    biography = check_text(
        v, p + "biography", draft.biography, maximum=DESCRIPTION_MAX, multiline=True
    )
    v.raise_if_any()
    return ExpertProfile(
        display_name=name,
        visibility=visibility,
        expertise_areas=tuple(areas),
        sdgs=sdgs,
        languages=languages,
        countries=countries,
        affiliation_organization_id=affiliation_id,
        affiliation=affiliation,
        biography=biography,
    )


def organization_draft_of(profile: OrganizationProfile) -> OrganizationDraft:
    """The draft that validates back to profile (the base of a partial update)."""
    return OrganizationDraft(
        name=profile.name,
        acronym=profile.acronym,
        type=profile.type.value,
        headquarters_country=profile.headquarters_country,
        operating_countries=profile.operating_countries,
        regions=[r.value for r in profile.regions],
        sdgs=profile.sdgs,
        website=profile.website,
        contact_email=profile.contact_email,
        description=profile.description,
        languages=profile.languages,
        parent_organization_id=profile.parent_organization_id,
    )


def expert_draft_of(profile: ExpertProfile) -> ExpertDraft:
    """The draft that validates back to profile (the base of a partial update)."""
    return ExpertDraft(
        display_name=profile.display_name,
        visibility=profile.visibility.value,
        expertise_areas=profile.expertise_areas,
        sdgs=profile.sdgs,
        languages=profile.languages,
        countries=profile.countries,
        affiliation_organization_id=profile.affiliation_organization_id,
        affiliation=profile.affiliation,
        biography=profile.biography,
    )


def validate_member_role(value: str, path: str = "role") -> MemberRole:
    """A member role from its name; ValidationError if unset or unknown."""
    v = Violations()
    role = _enum(v, path, value, MemberRole, "member role")
    v.raise_if_any()
    return role


def validate_user_id(value: str, path: str = "user_id") -> str:
    """A person's identity subject: 1-200 printable characters."""
    v = Violations()
    text = check_text(v, path, value, minimum=1, maximum=USER_ID_MAX)
    v.raise_if_any()
    return text


def validate_note(v: Violations, path: str, value: str, *, required: bool) -> str:
    """A reason or evidence note: optional (or required), at most NOTE_MAX characters."""
    return check_text(
        v, path, value, minimum=1 if required else 0, maximum=NOTE_MAX, multiline=True
    )


__all__ = [
    "BoundedViolations",
    "ExpertDraft",
    "OrganizationDraft",
    "ValidationError",
    "check_id",
    "is_language",
    "require_id",
    "validate_expert",
    "validate_member_role",
    "validate_note",
    "validate_organization",
    "validate_user_id",
]
