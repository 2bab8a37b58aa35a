"""Makes this service's tests importable as catalog.tests (a name no other service's tests share)."""
