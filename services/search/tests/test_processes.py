"""The two processes as real programs on Tansu and osmem: catalog events reach Search hits end
to end; two indexer workers share the partitions, and after one is killed with SIGKILL
mid-stream the other takes over: every document ends at its latest version."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opensearchpy import AsyncOpenSearch

from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.contracts.search.v1 import search_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.search.domain.documents import EntityType
from ssg.search.domain.indices import alias_name
from ssg.search.events.topics import ORGANIZATION_TOPIC, SOLUTION_TOPIC
from ssg.testing.servers import free_port
from ssg.testing.waiting import eventually

from . import events as ev
from .conftest import produce, search_settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return {**env, **extra}


async def start(module: str, log: Path, **env: str) -> asyncio.subprocess.Process:
    """``python -m module`` with env, its output in log."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=_env(**env), stdout=out, stderr=subprocess.STDOUT
        )


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return int(reply.status) == 200
    except OSError:
        return False


async def serving(channel: grpc.aio.Channel) -> bool:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="ssg.search.v1.SearchService"), timeout=1
        )
    except grpc.aio.AioRpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def stop(proc: asyncio.subprocess.Process, log: Path) -> None:
    """SIGTERM, then expect a clean exit."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(proc.wait(), 40)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"did not stop on SIGTERM: {tail(log)}") from None
    assert code == 0, tail(log)


def tail(log: Path) -> str:
    """The end of a process's log, for a failure message."""
    return log.read_text()[-3000:]


# Three processes start on a shared machine: allow for a slow start.
@pytest.mark.timeout(300)
async def test_end_to_end_and_a_killed_worker_loses_nothing(kafka_server, opensearch_url, tmp_path):
    settings = search_settings(kafka_server, opensearch_url)
    common = {
        "SSG_KAFKA_BOOTSTRAP": kafka_server.bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true" if kafka_server.local else "false",
        "SSG_OPENSEARCH_URL": opensearch_url,
        "SSG_INDEX_PREFIX": settings.index_prefix,
        "SSG_INDEXER_APP_ID": settings.indexer_app_id,
        "SSG_FAUST_TOPIC_PARTITIONS": "2",
        "SSG_BULK_FLUSH_SECONDS": "0.05",
        "SSG_BULK_REFRESH": "true",
        "SSG_HEALTH_INTERVAL_SECONDS": "0.2",
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_GRACE_SECONDS": "1",
    }
    grpc_port = free_port()
    ports = {"api": free_port(), "a": free_port(), "b": free_port()}
    logs = {name: tmp_path / f"{name}.log" for name in ports}
    api = await start(
        "ssg.search",
        logs["api"],
        SSG_GRPC_PORT=str(grpc_port),
        SSG_METRICS_PORT=str(ports["api"]),
        **common,
    )
    workers = {
        name: await start(
            "ssg.search.worker",
            logs[name],
            SSG_METRICS_PORT=str(ports[name]),
            SSG_FAUST_DATA_DIR=str(tmp_path / name),
            SSG_INSTANCE_ID=f"worker-{name}",
            **common,
        )
        for name in ("a", "b")
    }
    client = AsyncOpenSearch(opensearch_url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        await eventually(lambda: serving(channel), "the API SERVING", within=120)
        for name in ("a", "b"):
            await eventually(partial(healthz, ports[name]), f"worker {name} healthy", within=120)
        stub = pb_grpc.SearchServiceStub(channel)

        # End to end: catalog and registration events to a Search hit.
        marker = f"zq{ev.new_id()[:6]}"
        org_id, sol_id = ev.new_id(), ev.new_id()
        # The organization first: its verification reaching a worker after another worker
        # indexed the solution is the race ADR 0011 accepts, not what this test is about.
        await produce(
            settings,
            [
                (
                    ORGANIZATION_TOPIC,
                    ev.org_event(ev.organization(org_id, name=f"Org {marker}"), 1),
                    None,
                )
            ],
        )

        async def org_found():
            reply = await stub.Search(pb.SearchRequest(query=marker), timeout=5)
            return [h for h in reply.hits if h.id == org_id]

        await eventually(org_found, "the organization found by Search", within=60)
        await produce(
            settings,
            [
                (
                    SOLUTION_TOPIC,
                    ev.solution_event(
                        ev.solution(sol_id, title=f"Biogas {marker}", organization_id=org_id), 1
                    ),
                    None,
                ),
            ],
        )

        async def found():
            reply = await stub.Search(pb.SearchRequest(query=marker), timeout=5)
            return [h for h in reply.hits if h.id == sol_id]

        [hit] = await eventually(found, "the solution found by Search", within=60)
        assert hit.verified_provider

        # A stream of 2 versions of 20 solutions; worker a is killed half-way.
        many = f"zm{ev.new_id()[:6]}"
        ids = [ev.new_id() for _ in range(20)]
        first = [
            (SOLUTION_TOPIC, ev.solution_event(ev.solution(i, title=f"Kiln {many} one"), 1), None)
            for i in ids
        ]
        second = [
            (
                SOLUTION_TOPIC,
                ev.solution_event(
                    ev.solution(i, title=f"Kiln {many} two"), 2, ev.cat.SolutionUpdated
                ),
                None,
            )
            for i in ids
        ]
        await produce(settings, first[:10])
        workers["a"].kill()
        await workers["a"].wait()
        await produce(settings, first[10:] + second)

        async def all_at_version_2():
            reply = await client.mget(
                index=alias_name(settings.index_prefix, EntityType.SOLUTION), body={"ids": ids}
            )
            return all(d.get("found") and d["_version"] == 2 for d in reply["docs"])

        await eventually(all_at_version_2, "every solution at version 2", within=90)
        reply = await stub.Search(
            pb.SearchRequest(query=many, page=paging_pb2.PageRequest(page_size=100)), timeout=5
        )
        assert sorted(h.id for h in reply.hits) == sorted(ids)
        assert {h.title for h in reply.hits} == {f"Kiln {many} two"}
    finally:
        await channel.close()
        await client.close()
        for name, proc in workers.items():
            if name == "a" and proc.returncode is not None:
                continue
            await stop(proc, logs[name])
        await stop(api, logs["api"])
