"""`connect_redis` without any service: which client a URL makes, and how a Redis Cluster URL is read."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from orchestrator.serving.connect import connect_redis, is_cluster_url, parse_cluster_url, unavailable


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("redis://127.0.0.1:6379/0", {"host": "127.0.0.1", "port": 6379, "db": 0}),
        ("redis://:pw@cache.internal:6380/2", {"host": "cache.internal", "port": 6380, "db": 2, "password": "pw"}),
        ("rediss://cache.internal:6380/0", {"host": "cache.internal", "port": 6380}),
        ("unix:///run/redis.sock?db=1", {"path": "/run/redis.sock", "db": 1}),
    ],
)
def test_a_single_redis_url_makes_a_redis_client(url: str, kwargs: dict[str, object]) -> None:
    client = connect_redis(url, socket_timeout=5)
    assert type(client) is Redis and not is_cluster_url(url)
    made = client.connection_pool.connection_kwargs
    assert {name: made.get(name) for name in kwargs} == kwargs and made["socket_timeout"] == 5


def test_a_cluster_url_makes_a_cluster_client_on_its_nodes() -> None:
    client = connect_redis("redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", socket_timeout=5)
    assert isinstance(client, RedisCluster)
    assert [node.name for node in client.startup_nodes] == ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
    assert client.connection_kwargs["socket_timeout"] == 5  # options reach every node's connections


@pytest.mark.parametrize(
    ("url", "nodes", "options"),
    [
        ("redis+cluster://127.0.0.1:7000", [("127.0.0.1", 7000)], {}),
        ("REDIS+CLUSTER://a:7000, b:7001", [("a", 7000), ("b", 7001)], {}),
        ("redis+cluster://cache.internal", [("cache.internal", 6379)], {}),  # default port
        ("redis+cluster://[::1]:7000,[fe80::1]", [("::1", 7000), ("fe80::1", 6379)], {}),
        ("redis+cluster://127.0.0.1:7000/0", [("127.0.0.1", 7000)], {}),
        ("redis+cluster://127.0.0.1:7000/", [("127.0.0.1", 7000)], {}),
        ("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7000", [("10.0.0.1", 7000), ("10.0.0.2", 7000)],
         {"username": "app", "password": "s@cret"}),
        ("rediss+cluster://:pw@10.0.0.1:7000?ssl_cert_reqs=none&socket_timeout=3", [("10.0.0.1", 7000)],
         {"password": "pw", "ssl": True, "ssl_cert_reqs": "none", "socket_timeout": 3.0}),
    ],
)  # fmt: skip
def test_cluster_urls(url: str, nodes: list[tuple[str, int]], options: dict[str, object]) -> None:
    assert is_cluster_url(url)
    address = parse_cluster_url(url)
    assert list(address.nodes) == nodes and address.options == options


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://", "no node"),
        ("redis+cluster://user:pw@", "no node"),
        ("redis+cluster://a:7000,:7001", "without a host"),
        ("redis+cluster://a:70000", "bad port"),
        ("redis+cluster://a:port", "bad port"),
        ("redis+cluster://[::1]x", "bad node"),
        ("redis+cluster://a:7000/1", "database 0 only"),
        ("redis://a:7000", "not a Redis Cluster URL"),
    ],
)
def test_bad_cluster_urls_say_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_cluster_url(url)


def test_the_urls_options_win_over_the_callers() -> None:
    client = connect_redis("rediss+cluster://10.0.0.1:7000?socket_timeout=3", socket_timeout=5, decode_responses=True)
    assert client.connection_kwargs["socket_timeout"] == 3.0 and client.connection_kwargs["decode_responses"]


def test_which_errors_mean_redis_cannot_answer_now() -> None:
    assert unavailable(redis_errors.ConnectionError("refused")) and unavailable(redis_errors.BusyLoadingError())
    assert unavailable(redis_errors.ClusterDownError("CLUSTERDOWN")) and unavailable(redis_errors.TryAgainError())
    assert unavailable(OSError("unreachable"))
    try:  # what redis-py raises when a cluster client reaches none of its startup nodes
        try:
            raise redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:7000")
        except redis_errors.ConnectionError as cause:
            raise redis_errors.RedisClusterException("Redis Cluster cannot be connected") from cause
    except redis_errors.RedisClusterException as error:
        assert unavailable(error)
    assert not unavailable(redis_errors.RedisClusterException("MGET - all keys must map to the same key slot"))
    assert not unavailable(redis_errors.ResponseError("WRONGTYPE")) and not unavailable(ValueError("bad"))
