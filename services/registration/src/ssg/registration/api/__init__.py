"""The gRPC edge of the registration service."""
