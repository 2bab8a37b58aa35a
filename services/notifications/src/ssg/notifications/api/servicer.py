"""The gRPC servicer: translate requests into service calls and results into replies, nothing
else. Authorization and validation live in the service and domain layers; the platform
interceptor maps domain errors to status codes."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.notifications.v1 import notifications_service_pb2 as pb
from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc as pb_grpc
from ssg.notifications import mapping
from ssg.notifications.service import SubscriptionService
from ssg.platform.grpc.interceptors import current_identity

Context: TypeAlias = grpc.aio.ServicerContext


class NotificationServicer(pb_grpc.NotificationServiceServicer):
    """ssg.notifications.v1.NotificationService on top of SubscriptionService."""

    def __init__(self, service: SubscriptionService) -> None:
        self.service = service

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> pb.SubscribeResponse:
        """Create a subscription of the caller."""
        done = await self.service.subscribe(
            current_identity(), mapping.raw_subscription(request.subscription)
        )
        return pb.SubscribeResponse(
            subscription=mapping.subscription_to_proto(done.subscription),
            webhook_secret=done.webhook_secret,
        )

    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: Context
    ) -> pb.UpdateSubscriptionResponse:
        """Replace a subscription's settings at its version."""
        sub = await self.service.update(
            current_identity(),
            request.subscription.id,
            request.subscription.version,
            mapping.raw_subscription(request.subscription),
        )
        return pb.UpdateSubscriptionResponse(subscription=mapping.subscription_to_proto(sub))

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: Context
    ) -> pb.UnsubscribeResponse:
        """Stop a subscription by id or by one-click token."""
        sub = await self.service.unsubscribe(
            current_identity(), request.subscription_id, request.token
        )
        return pb.UnsubscribeResponse(subscription=mapping.subscription_to_proto(sub))

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Context
    ) -> pb.ListSubscriptionsResponse:
        """A page of the caller's subscriptions."""
        page = await self.service.list_subscriptions(
            current_identity(),
            request.include_unsubscribed,
            request.page.page_size,
            request.page.page_token,
            request.organization_id,
        )
        return pb.ListSubscriptionsResponse(
            subscriptions=[mapping.subscription_to_proto(s) for s in page.items],
            page=paging_pb2.PageResponse(next_page_token=page.next_page_token),
        )

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Context
    ) -> pb.ListDeliveriesResponse:
        """A page of deliveries of the caller's subscriptions."""
        page = await self.service.list_deliveries(
            current_identity(),
            request.subscription_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListDeliveriesResponse(
            deliveries=[mapping.delivery_to_proto(d) for d in page.items],
            page=paging_pb2.PageResponse(next_page_token=page.next_page_token),
        )
