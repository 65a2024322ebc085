"""The server fixtures give real, working servers."""

from __future__ import annotations

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration


def test_redis_set_get(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("streamify-test:servers", b"ok")
        assert client.get("streamify-test:servers") == b"ok"
    finally:
        client.delete("streamify-test:servers")
        client.close()


def test_redis_stop_start_same_port(private_redis: RedisServer) -> None:
    pid, port = private_redis.pid, private_redis.port
    client = redis.Redis.from_url(private_redis.url, socket_connect_timeout=1, retry=None)
    try:
        client.set("k", b"v")
        private_redis.stop()
        assert private_redis.pid is None
        with pytest.raises(redis.ConnectionError):
            client.ping()
        private_redis.start()
        assert private_redis.port == port and private_redis.pid not in (None, pid)
        assert client.get("k") == b"v"  # private_redis is persistent across restarts
    finally:
        client.close()


def test_postgres_select_1(postgres_server: PostgresServer) -> None:
    engine = create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_postgres_new_database_is_fresh_and_empty(postgres_server: PostgresServer) -> None:
    url_a, url_b = postgres_server.new_database(), postgres_server.new_database()
    assert make_url(url_a).database != make_url(url_b).database
    assert make_url(url_a).drivername == "postgresql+psycopg"
    conninfo = make_url(url_a).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
