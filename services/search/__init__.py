"""Makes this service's tests importable as search.tests (a name no other service's tests share)."""
