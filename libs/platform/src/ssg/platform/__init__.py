"""Shared mechanisms of every South-South Galaxy service (``ssg.platform``)."""
