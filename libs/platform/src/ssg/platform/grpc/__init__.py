"""gRPC server and client stack shared by every service (``ssg.platform.grpc``)."""

from ssg.platform.grpc.interceptors import MethodPolicy, PlatformInterceptor, current_identity

__all__ = ["MethodPolicy", "PlatformInterceptor", "current_identity"]
