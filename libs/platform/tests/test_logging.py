"""Logs are one JSON object per line, carrying the bound trace id."""

from __future__ import annotations

import io
import json
import logging

from ssg.platform.logging import configure_logging
from ssg.platform.tracing import accept_trace_id, bound_trace_id, current_trace_id


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_with_trace_id_and_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("catalog", "africa", "INFO", stream=stream)
    with bound_trace_id("abcdef0123456789"):
        logging.getLogger("ssg.test").info("solution %s published", "s-1", extra={"org": "o-9"})
    (entry,) = _lines(stream)
    assert entry["msg"] == "solution s-1 published"
    assert entry["trace_id"] == "abcdef0123456789"
    assert entry["service"] == "catalog"
    assert entry["instance"] == "africa"
    assert entry["org"] == "o-9"
    assert entry["level"] == "INFO"


def test_exceptions_are_logged_inside_the_json() -> None:
    stream = io.StringIO()
    configure_logging("catalog", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("ssg.test").exception("failed")
    (entry,) = _lines(stream)
    assert "RuntimeError: boom" in str(entry["exc"])


def test_trace_binding_is_scoped() -> None:
    assert current_trace_id() == ""
    with bound_trace_id("trace-aaaaaaaa"):
        assert current_trace_id() == "trace-aaaaaaaa"
    assert current_trace_id() == ""


def test_incoming_trace_ids_are_checked() -> None:
    assert accept_trace_id("0123456789abcdef") == "0123456789abcdef"
    assert accept_trace_id("0123456789abcdef\n") != "0123456789abcdef\n"
    minted = accept_trace_id("bad id\nwith newline")
    assert minted != "bad id\nwith newline"
    assert len(minted) == 32
    assert accept_trace_id(None) != accept_trace_id(None)


def test_a_line_per_request_is_the_same_json_with_or_without_a_record() -> None:
    from ssg.platform.logging import log_fields

    stream = io.StringIO()
    configure_logging("catalog", "africa", "INFO", stream=stream)
    access = logging.getLogger("ssg.grpc.access")
    fields = {"trace_id": "abcdef0123456789", "grpc_method": "GetSolution", "duration_ms": 1.5}
    log_fields(access, logging.INFO, "rpc", fields)  # straight to the JSON handler
    captured = io.StringIO()
    extra = logging.StreamHandler(captured)  # another handler: an ordinary record
    logging.getLogger().addHandler(extra)
    try:
        log_fields(access, logging.INFO, "rpc", fields)
    finally:
        logging.getLogger().removeHandler(extra)
    direct, via_record = _lines(stream)
    assert captured.getvalue() == "rpc\n"
    assert direct.pop("ts") and via_record.pop("ts")
    assert direct == via_record
    assert direct == {
        "level": "INFO",
        "logger": "ssg.grpc.access",
        "msg": "rpc",
        "service": "catalog",
        "instance": "africa",
        **fields,
    }


def test_a_line_per_request_respects_the_level() -> None:
    from ssg.platform.logging import log_fields

    stream = io.StringIO()
    configure_logging("catalog", level="WARNING", stream=stream)
    access = logging.getLogger("ssg.grpc.access")
    if access.isEnabledFor(logging.INFO):  # the caller's check, as the interceptor makes it
        log_fields(access, logging.INFO, "rpc", {})
    log_fields(access, logging.WARNING, "slow rpc", {})
    assert [line["msg"] for line in _lines(stream)] == ["slow rpc"]
