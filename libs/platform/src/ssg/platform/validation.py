"""Field checks both services make the same way, recording into ``Violations``.

Only what is the same logic everywhere lives here: ids as references, repeated values, ISO 639-1
language codes. Texts, URLs, e-mail addresses and list caps are still checked by each service
with its own rules and wording (see each service's ``domain/validation``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache

import pycountry
from google.protobuf.timestamp_pb2 import Timestamp

from ssg.platform.errors import ValidationError, Violations

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


# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
_NANOS_MAX = 999_999_999


def to_datetime(value: Timestamp, path: str) -> datetime:
    """A Timestamp a caller sent as an aware UTC datetime; ValidationError naming path when it is
    outside the Timestamp range or its nanos are not 0 to 999,999,999."""
    in_range = TIMESTAMP_MIN_SECONDS <= value.seconds <= TIMESTAMP_MAX_SECONDS
    if not in_range or not 0 <= value.nanos <= _NANOS_MAX:
        raise ValidationError.single(
            path, "must be a timestamp from 0001-01-01 to 9999-12-31 with nanos 0 to 999999999"
        )
    return value.ToDatetime(tzinfo=UTC)
