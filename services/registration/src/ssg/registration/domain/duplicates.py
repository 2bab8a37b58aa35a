"""The duplicate guard: which existing organizations look like a new one.

Two signals, either is enough: a similar name or acronym within the same headquarters country
(rapidfuzz, token-order insensitive), or the same website domain anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from rapidfuzz import fuzz

from ssg.registration.domain.model import DuplicateCandidate, Organization, OrganizationProfile

NAME_THRESHOLD = 88.0
MAX_CANDIDATES = 10
# Organizations the store hands the matcher at most per registration: the pool is pre-filtered
# by match keys, so this bound only bites for names made of very common words.
POOL_LIMIT = 200
KEY_PREFIX = 4  # a token's first letters form its match key: tolerant of typos further on
SAME_COUNTRY_NAME = "similar name in the same country"
SAME_COUNTRY_ACRONYM = "same acronym in the same country"
SAME_DOMAIN = "same website domain"

# Words that say what kind of body it is, not which one: "Ministry of Health of Kenya" and
# "Kenya Ministry of Health" should match, "Ministry of Health" and "Ministry of Energy" not.
_NOISE = re.compile(r"\b(the|of|for|and|de|la|le|du|des|el|y|et)\b")
_PUNCT = re.compile(r"[^\w\s]")
# Shared hosts where one domain holds many unrelated sites: matching on them means nothing.
_SHARED_HOSTS = frozenset(
    {"facebook.com", "github.io", "wordpress.com", "blogspot.com", "google.com", "linkedin.com"}
)


def normalize_name(name: str) -> str:
    """Lower case, accents and punctuation removed, filler words dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _NOISE.sub(" ", _PUNCT.sub(" ", text))
    return " ".join(text.split())


# Words that occur in the names of many organizations of a country: a key on them alone would
# pull half the country into the pool, so a query uses them only when a name has nothing else.
_COMMON = frozenset(
    {
        "association", "national", "development", "foundation", "institute", "international",
        "network", "organization", "organisation", "society", "council", "centre", "center",
        "ministry", "university", "federation", "union", "group", "trust", "agency", "office",
        "programme", "program", "fund", "forum", "alliance", "initiative", "community",
    }
)  # fmt: skip


def _key(token: str) -> str:
    return "n:" + token[:KEY_PREFIX]


def match_keys(name: str, acronym: str) -> list[str]:
    """What an organization is found by in the duplicate pool: the first letters of every
    token of its normalized name (``n:``) and its acronym (``a:``). Stored with it."""
    keys = {_key(token) for token in normalize_name(name).split()}
    if acronym:
        keys.add("a:" + acronym.casefold())
    return sorted(keys)


def query_keys(profile: OrganizationProfile) -> list[str]:
    """The match keys to look a new profile's likely duplicates up by: its distinctive name
    tokens (all of them when it has only common ones), its acronym as an acronym, and its
    acronym as a name (someone may have registered the acronym as the name)."""
    tokens = normalize_name(profile.name).split()
    distinctive = [t for t in tokens if t not in _COMMON] or tokens
    keys = {_key(t) for t in distinctive}
    acronym = profile.acronym.casefold()
    if acronym:
        keys.add("a:" + acronym)
        keys.update(_key(t) for t in normalize_name(profile.acronym).split())
    return sorted(keys)


def website_domain(url: str) -> str:
    """The registrable-looking host of a website without ``www.`` ('' when none or shared)."""
    if not url:
        return ""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    host = host.removeprefix("www.")
    if host in _SHARED_HOSTS or any(host.endswith("." + shared) for shared in _SHARED_HOSTS):
        return ""
    return host


def find_duplicates(
    profile: OrganizationProfile, existing: Iterable[Organization], exclude_id: str = ""
) -> tuple[DuplicateCandidate, ...]:
    """Existing organizations that likely are the same as profile, best match first."""
    name = normalize_name(profile.name)
    acronym = profile.acronym.casefold()
    domain = website_domain(profile.website)
    found: list[DuplicateCandidate] = []
    for org in existing:
        if org.id == exclude_id:
            continue
        reasons: list[str] = []
        score = 0.0
        other = org.profile
        if other.headquarters_country == profile.headquarters_country:
            score = fuzz.token_sort_ratio(name, normalize_name(other.name))
            if score >= NAME_THRESHOLD:
                reasons.append(SAME_COUNTRY_NAME)
            if acronym and other.acronym.casefold() == acronym:
                reasons.append(SAME_COUNTRY_ACRONYM)
                score = max(score, 100.0)
            elif acronym and fuzz.ratio(acronym, normalize_name(other.name)) >= NAME_THRESHOLD:
                # Someone registered the acronym as the name (or the reverse).
                reasons.append(SAME_COUNTRY_NAME)
        if domain and website_domain(other.website) == domain:
            reasons.append(SAME_DOMAIN)
            score = max(score, 100.0)
        if reasons:
            found.append(DuplicateCandidate(org.id, other.name, round(score, 1), tuple(reasons)))
    found.sort(key=lambda c: (-c.score, c.name))
    return tuple(found[:MAX_CANDIDATES])
