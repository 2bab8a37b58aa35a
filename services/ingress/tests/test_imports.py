"""The bridge runs on eventlet: it must not import grpcio, a MongoDB driver or asyncio Kafka."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("grpc", "pymongo", "motor", "mongoengine", "aiokafka", "faust")


def test_the_bridge_process_imports_no_grpc_mongodb_or_asyncio_kafka():
    probe = (
        "import sys, ssg.ingress.__main__; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_bridge_refuses_to_start_without_its_servers():
    done = subprocess.run(
        [sys.executable, "-m", "ssg.ingress"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SSG_PRODUCERS": '{"pm": ["solution.deleted"]}'},
        check=False,
    )
    assert done.returncode == 2
    assert "SSG_AMQP_URL" in done.stderr
    assert "SSG_KAFKA_BOOTSTRAP" in done.stderr
    assert "SSG_PRODUCERS" in done.stderr
