"""Field checks both services make the same way, recording into ``Violations``.

Only what is the same logic everywhere lives here: ids as references, repeated values, ISO 639-1
language codes. Texts, URLs, e-mail addresses and list caps are still checked by each service
with its own rules and wording (see each service's ``domain/validation``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import pycountry

from ssg.platform.errors import Violations

ID_MAX = 64
# Ids are server-assigned (32 hex digits) or another service's; anything longer is not an id.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_id(value: str) -> bool:
    """True for an id: 1 to 64 letters, digits, '-' and '_'."""
    return bool(_ID.fullmatch(value))


def check_id(v: Violations, path: str, value: str, *, required: bool = True) -> str:
    """An id as a reference: 'is required' when empty (unless optional), 'is not a valid id'
    when malformed; return it."""
    if not value:
        if required:
            v.add(path, "is required")
    elif not is_id(value):
        v.add(path, "is not a valid id")
    return value


def require_id(value: str, path: str = "id") -> str:
    """An id that must be present and well-formed; ValidationError naming path otherwise."""
    v = Violations()
    check_id(v, path, value)
    v.raise_if_any()
    return value


def check_unique(v: Violations, path: str, values: Sequence[object]) -> None:
    """A violation of path when values holds a value twice."""
    if len(set(values)) != len(values):
        v.add(path, "must not repeat a value")


@cache
def _language_codes() -> frozenset[str]:
    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def is_language(code: str) -> bool:
    """True for an ISO 639-1 code in lower case, e.g. 'en'."""
    return code in _language_codes()
