"""One logger set-up for every process: JSON lines with service, instance and trace id."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

from ssg.platform.tracing import current_trace_id

# Attributes every LogRecord has; anything else passed via ``extra=`` is emitted as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self._static = {"service": service, "instance": instance}

    def format(self, record: logging.LogRecord) -> str:
        """Render the record, its extra fields and any exception as JSON."""
        entry = self._entry(
            record.created, record.levelname, record.name, record.getMessage(), record.__dict__
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._dumps(entry)

    def line(
        self, created: float, level: str, logger: str, msg: str, fields: dict[str, Any]
    ) -> str:
        """The line ``format`` writes for a record of these fields (without building one)."""
        return self._dumps(self._entry(created, level, logger, msg, fields))

    def _entry(
        self, created: float, level: str, logger: str, msg: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": _timestamp(created),
            "level": level,
            "logger": logger,
            "msg": msg,
            **self._static,
            "trace_id": fields.get("trace_id") or current_trace_id(),
        }
        for key, value in fields.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return entry

    @staticmethod
    def _dumps(entry: dict[str, Any]) -> str:
        # orjson: this runs once per request in the access log, where json.dumps was a third
        # of the interceptor's cost.
        return orjson.dumps(entry, default=str).decode()


class JsonHandler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs: JSON lines to a stream."""

    def write_fields(self, level: str, logger: str, msg: str, fields: dict[str, Any]) -> None:
        """Write the line a record of these fields would give, flushed like ``emit``."""
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter)
        text = formatter.line(time.time(), level, logger, msg, fields) + self.terminator
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(text)
            self.flush()


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, msg, extra=fields)`` for a line per request (the access log).

    When the record would reach only the JSON handler of ``configure_logging`` (no other
    handler or filter on its way, as in every service process), the line is written
    directly: the same JSON without building a LogRecord, which cost a request several times
    what the line itself does. Anywhere else (tests capturing logs, other set-ups) it is an
    ordinary record.
    """
    handler = _only_json_handler(logger, level)
    if handler is not None:
        handler.write_fields(logging.getLevelName(level), logger.name, msg, fields)
        return
    record = logger.makeRecord(logger.name, level, __file__, 0, msg, (), None, extra=fields)
    logger.handle(record)


def _only_json_handler(logger: logging.Logger, level: int) -> JsonHandler | None:
    """The JSON handler when it is the only thing a record of logger at level would meet."""
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or node.disabled:
            return None
        if node.handlers:
            if node.parent is not None or len(node.handlers) != 1:
                return None  # handlers below the root, or more than one
            handler = node.handlers[0]
            if type(handler) is not JsonHandler or handler.filters or level < handler.level:
                return None
            return handler
        if not node.propagate:
            return None
        node = node.parent
    return None


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-27T13:05:01.123Z."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def configure_logging(
    service: str, instance: str = "global", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Route the root logger to stdout (or stream) as JSON lines; safe to call twice."""
    handler = JsonHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service, instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "pymongo", "opensearch", "urllib3", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
