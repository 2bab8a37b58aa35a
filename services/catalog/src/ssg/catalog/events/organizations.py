"""The organizations read model, kept from ``registration.organization-events.v1``.

Every organization event carries the organization's full state, so each handler stores that
state unless a newer version is already stored (``apply_if_newer`` on aggregate_version): a
redelivered, replayed or out-of-order event changes nothing, and replaying the topic from the
start into an empty database rebuilds the same model.
"""

from __future__ import annotations

from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.catalog.store.ports import Store
from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.events.consumer import Event, HandlerRegistry, NonRetryableError
from ssg.platform.events.organizations import ORGANIZATION_EVENTS


def organization_ref(org: organization_pb2.Organization, version: int) -> OrganizationRef:
    """What the catalog keeps of an organization message."""
    status_name = organization_pb2.OrganizationStatus.Name(org.status).removeprefix(
        "ORGANIZATION_STATUS_"
    )
    try:
        status = OrganizationStatus(status_name)
    except ValueError:
        # An event that does not say what the organization is cannot be applied; retrying
        # will not change that.
        raise NonRetryableError(f"organization {org.id} has status {status_name}") from None
    return OrganizationRef(
        id=org.id,
        name=org.name,
        status=status,
        instance=org.instance,
        country=org.headquarters_country,
        type=organization_type_pb2.OrganizationType.Name(org.type).removeprefix(
            "ORGANIZATION_TYPE_"
        ),
        merged_into=org.merged_into,
        version=version,
        regions=tuple(geography_pb2.Region.Name(r).removeprefix("REGION_") for r in org.regions),
    )


def organization_handlers(store: Store) -> HandlerRegistry:
    """Handlers of every organization event type, writing into store's read model."""
    handlers = HandlerRegistry()

    def apply(event: Event[reg.OrganizationRegistered]) -> None:
        env = event.envelope
        if not event.payload.organization.id:
            raise NonRetryableError("organization event without an organization id")
        store.apply_organization(
            organization_ref(event.payload.organization, env.aggregate_version)
        )

    for payload_type in ORGANIZATION_EVENTS:
        handlers.add(f"registration.{payload_type.DESCRIPTOR.name}", payload_type, apply)  # type: ignore[arg-type]
    return handlers
