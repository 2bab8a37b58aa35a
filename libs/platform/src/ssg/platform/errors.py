"""Domain errors every service raises; the gRPC edge maps them to status codes in one table.

This module imports nothing from grpc so that domain code (rules, no I/O) can raise these
errors without depending on a transport.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class DomainError(Exception):
    """Base of the errors a caller may see; the message must be safe to show to that caller."""


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field (a dotted path such as ``organization.name``) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ValidationError(DomainError):
    """The request is invalid; carries every field violation found, not just the first."""

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        if not self.violations:
            raise ValueError("ValidationError needs at least one violation")
        super().__init__("invalid request: " + "; ".join(str(v) for v in self.violations))

    @classmethod
    def single(cls, field: str, reason: str) -> ValidationError:
        """A ValidationError for one field."""
        return cls([FieldViolation(field, reason)])


class NotFound(DomainError):
    """The addressed entity does not exist (or the caller may not know that it does)."""


class AlreadyExists(DomainError):
    """An entity with the same identity already exists."""


class VersionConflict(DomainError):
    """Optimistic concurrency: the entity changed since the caller read it; re-read and retry."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class Unauthenticated(DomainError):
    """The caller's identity is missing or could not be verified."""


class FailedPrecondition(DomainError):
    """The system is not in the state the operation needs (e.g. publishing an unreviewed item)."""


class Unavailable(DomainError):
    """A dependency the operation needs (a datastore) does not answer; the caller may retry."""


class Violations:
    """Collects field violations while validating a request, then raises them all at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def check(self, condition: bool, field: str, reason: str) -> bool:
        """Record a violation of field when condition is false; return condition."""
        if not condition:
            self._items.append(FieldViolation(field, reason))
        return condition

    def add(self, field: str, reason: str) -> None:
        """Record a violation unconditionally."""
        self._items.append(FieldViolation(field, reason))

    @property
    def items(self) -> tuple[FieldViolation, ...]:
        """The violations recorded so far."""
        return tuple(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def raise_if_any(self) -> None:
        """Raise ValidationError carrying every recorded violation, if there is one."""
        if self._items:
            raise ValidationError(self._items)
