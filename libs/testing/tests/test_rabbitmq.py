"""Throw-away vhosts and users on the machine's RabbitMQ: usable, then gone."""

from __future__ import annotations

from kombu import Connection

from ssg.testing.rabbitmq import rabbitmqctl, temporary_vhost


def _vhosts() -> set[str]:
    return set(rabbitmqctl("list_vhosts", "name").split())


def _users() -> set[str]:
    return {line.split("\t")[0] for line in rabbitmqctl("list_users").splitlines()}


def test_a_vhost_and_its_users_work_and_are_deleted_after(amqp_url: str) -> None:
    with temporary_vhost(amqp_url, "ssg-test-vhost") as vhost:
        user = vhost.add_user("t-user")
        assert vhost.name in _vhosts()
        with Connection(vhost.url(user)) as connection:
            queue = connection.SimpleQueue("probe")
            queue.put({"hello": "world"})
            assert queue.get(timeout=5).payload == {"hello": "world"}
            queue.close()
    assert vhost.name not in _vhosts()
    assert user not in _users()
