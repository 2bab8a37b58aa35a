"""Makes this service's tests importable as recommendation.tests (a name no other service's tests share)."""
