"""gRPC server and client stack shared by every service (``ssg.platform.grpc``)."""

from ssg.platform.grpc.client import channel
from ssg.platform.grpc.interceptors import MethodPolicy, PlatformInterceptor, current_identity
from ssg.platform.grpc.server import PlatformServer, build_server, serve, verifier_from_settings

__all__ = [
    "MethodPolicy",
    "PlatformInterceptor",
    "PlatformServer",
    "build_server",
    "channel",
    "current_identity",
    "serve",
    "verifier_from_settings",
]
