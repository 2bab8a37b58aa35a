"""Makes this service's tests importable as ingress.tests (a name no other service's tests share)."""
