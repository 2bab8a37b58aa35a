"""Settings of the notifications processes (``SSG_*`` on top of the platform's).

The delivery process reads them too: this module imports no grpcio and no MongoDB driver.
"""

from __future__ import annotations

from pydantic import Field

from ssg.platform.settings import PlatformSettings


class NotificationsSettings(PlatformSettings):
    """What the api, worker and delivery processes read from their environment."""

    service: str = Field(default="notifications", pattern=r"^[a-z][a-z0-9-]*$")
    # Signs one-click unsubscribe tokens and derives webhook secrets; defaults to
    # SSG_JWT_SECRET. Every process of the service must share it.
    signing_key: str = ""
    # Links in messages point here.
    public_base_url: str = "https://ssg.example.org"
    # Webhooks to loopback addresses are refused unless this is set (tests, the local stack).
    webhook_allow_loopback: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # The matcher's consumer group (catalog, registration and match events).
    matcher_group: str = "notifications-matcher"
    # RabbitMQ names: <prefix>.tasks, <prefix>.results, <prefix>.dlq, <prefix>.retry.<ms>.
    queue_prefix: str = Field(default="notifications.delivery", pattern=r"^[a-z][a-z0-9._-]*$")
    # classic (the local RabbitMQ) or quorum (replicated: Kubernetes; ADR 0041).
    queue_type: str = Field(default="classic", pattern=r"^(classic|quorum)$")
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_ms: int = Field(default=1000, ge=1)
    retry_multiplier: int = Field(default=4, ge=1, le=10)
    retry_max_ms: int = Field(default=15 * 60 * 1000, ge=1)

    # The dispatcher: pending deliveries handed to RabbitMQ per round, and the pause between
    # rounds that found nothing.
    dispatch_batch: int = Field(default=200, ge=1, le=10_000)
    dispatch_idle_seconds: float = Field(default=0.2, gt=0)
    # How often due digests and funding-deadline reminders are looked for (0 = never).
    digest_interval_seconds: float = Field(default=60.0, ge=0)
    # A funding opportunity is reminded this many days before its deadline.
    funding_reminder_days: int = Field(default=7, ge=1, le=90)

    # E-mail (the delivery process).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "South-South Galaxy <notifications@ssg.example.org>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Concurrent deliveries per delivery process (nameko max_workers).
    delivery_workers: int = Field(default=10, ge=1, le=200)
    # At most this many messages per recipient (address) per minute; more wait in a delay queue.
    recipient_rate_per_minute: int = Field(default=60, ge=1)

    def signing_bytes(self) -> bytes:
        """The signing key (or the JWT secret); ValueError when neither is set."""
        key = self.signing_key or self.jwt_secret
        if len(key) < 16:
            raise ValueError("SSG_SIGNING_KEY (or SSG_JWT_SECRET) must be at least 16 characters")
        return key.encode()

    def unsubscribe_url(self, token: str) -> str:
        """The one-click unsubscribe link carrying token."""
        return f"{self.public_base_url.rstrip('/')}/unsubscribe?token={token}"
