"""The subscriptions API's use cases: who may do what, validation, and the store calls
(run off the event loop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ssg.notifications.domain.digest import next_boundary
from ssg.notifications.domain.model import (
    ORGANIZATION_TOPICS,
    Channel,
    Delivery,
    Frequency,
    Subscription,
    SubscriptionInput,
    SubscriptionStatus,
)
from ssg.notifications.domain.signing import (
    verify_unsubscribe_token,
    webhook_secret,
)
from ssg.notifications.domain.validation import RawSubscription, validate_subscription
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.clock import new_id, utc_now
from ssg.platform.errors import (
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
    Violations,
)
from ssg.platform.mongo import run_sync
from ssg.platform.paging import Page, PageCodec, next_page, page_request
from ssg.platform.validation import check_id, require_id


@dataclass(frozen=True)
class Subscribed:
    """A new subscription and, for a webhook, the secret its requests are signed with."""

    subscription: Subscription
    webhook_secret: str


def _signed_in(identity: Identity) -> str:
    if not identity.authenticated:
        raise Unauthenticated("sign in to manage subscriptions")
    return identity.subject


def _manages(identity: Identity, sub: Subscription) -> bool:
    """Its owner, or any member of its organization when it follows that organization
    (ADR 0033: such subscriptions belong to the organization)."""
    if sub.owner == identity.subject:
        return True
    spec = sub.spec
    return (
        bool(spec.organization_id)
        and not ORGANIZATION_TOPICS.isdisjoint(spec.filters.topics)
        and Role.MEMBER in identity.roles
        and identity.organization_id == spec.organization_id
    )


def _next_digest_at(spec: SubscriptionInput, now: datetime) -> datetime | None:
    return None if spec.frequency is Frequency.INSTANT else next_boundary(spec.frequency, now)


class SubscriptionService:
    """Subscribe, update, unsubscribe, list subscriptions and deliveries."""

    def __init__(
        self,
        store: NotificationStore,
        signing_key: bytes,
        pages: PageCodec,
        *,
        allow_loopback: bool = False,
    ) -> None:
        self.store = store
        self.key = signing_key
        self.pages = pages
        self.allow_loopback = allow_loopback

    def _validate(self, identity: Identity, raw: RawSubscription) -> SubscriptionInput:
        spec = validate_subscription(raw, allow_loopback=self.allow_loopback)
        if not ORGANIZATION_TOPICS.isdisjoint(spec.filters.topics) and not (
            Role.MEMBER in identity.roles and identity.organization_id == spec.organization_id
        ):
            raise PermissionDenied("only members of the organization may follow it")
        return spec

    async def subscribe(self, identity: Identity, raw: RawSubscription) -> Subscribed:
        """Create an active subscription of the caller."""
        owner = _signed_in(identity)
        spec = self._validate(identity, raw)
        now = utc_now()
        sub = Subscription(new_id(), owner, spec, SubscriptionStatus.ACTIVE, 1, now, now)
        await run_sync(self.store.insert_subscription, sub, _next_digest_at(spec, now))
        secret = webhook_secret(self.key, sub.id) if spec.channel is Channel.WEBHOOK else ""
        return Subscribed(sub, secret)

    async def _own(self, identity: Identity, subscription_id: str) -> Subscription:
        _signed_in(identity)
        require_id(subscription_id, "subscription_id")
        sub = await run_sync(self.store.get_subscription, subscription_id)
        if sub is None or not _manages(identity, sub):
            raise NotFound("no such subscription")
        return sub

    async def update(
        self, identity: Identity, subscription_id: str, version: int, raw: RawSubscription
    ) -> Subscription:
        """Replace a subscription's filters, channel, frequency and language at version."""
        require_id(subscription_id, "subscription.id")
        if version < 1:
            raise ValidationError.single("subscription.version", "is required (the version read)")
        spec = self._validate(identity, raw)
        await self._own(identity, subscription_id)
        now = utc_now()
        return await run_sync(
            self.store.update_subscription,
            subscription_id,
            version,
            spec,
            now,
            _next_digest_at(spec, now),
        )

    async def unsubscribe(
        self, identity: Identity, subscription_id: str, token: str
    ) -> Subscription:
        """Stop a subscription by id (its owner) or by a one-click token (anyone holding it)."""
        if token:
            found = verify_unsubscribe_token(self.key, token)
            if found is None:
                raise ValidationError.single("token", "is not a valid unsubscribe token")
            subscription_id = found
        else:
            await self._own(identity, subscription_id)
        sub = await run_sync(
            self.store.set_status, subscription_id, SubscriptionStatus.UNSUBSCRIBED, utc_now()
        )
        if sub is None:
            raise NotFound("no such subscription")
        return sub

    async def list_subscriptions(
        self,
        identity: Identity,
        include_unsubscribed: bool,
        size: int,
        token: str,
        organization_id: str = "",
    ) -> Page[Subscription]:
        """A page of the caller's subscriptions, or of their organization's subscriptions to
        organization topics, newest first."""
        owner = _signed_in(identity)
        v = Violations()
        if organization_id:
            check_id(v, "organization_id", organization_id)
        fingerprint = f"subs|{owner}|{include_unsubscribed}|{organization_id}"
        limit, after = page_request(self.pages, v, size, token, fingerprint)
        if organization_id and not (
            Role.MEMBER in identity.roles and identity.organization_id == organization_id
        ):
            raise PermissionDenied("only members of the organization may list its subscriptions")
        subs = await run_sync(
            self.store.list_subscriptions,
            owner,
            include_unsubscribed,
            limit,
            after,
            organization_id,
        )
        return next_page(
            self.pages, subs, limit, lambda s: (s.create_time.isoformat(), s.id), fingerprint
        )

    async def list_deliveries(
        self, identity: Identity, subscription_id: str, size: int, token: str
    ) -> Page[Delivery]:
        """A page of deliveries of the caller's subscriptions, newest first."""
        owner = _signed_in(identity)
        v = Violations()
        if subscription_id:
            check_id(v, "subscription_id", subscription_id)
        fingerprint = f"deliveries|{owner}|{subscription_id}"
        limit, after = page_request(self.pages, v, size, token, fingerprint)
        rows = await run_sync(self.store.list_deliveries, owner, subscription_id, limit, after)
        return next_page(
            self.pages, rows, limit, lambda d: (d.create_time.isoformat(), d.id), fingerprint
        )
