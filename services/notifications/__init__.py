"""Makes this service's tests importable as notifications.tests (a name no other service's tests share)."""
