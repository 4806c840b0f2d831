"""Every Redis client of the project is made here, from `ORCH_REDIS_URL`: a single Redis or a Redis Cluster.

- `redis://[user:password@]host:port/db`, `rediss://...` (TLS), `unix:///path.sock?db=0`: one Redis
  (`redis.asyncio.Redis.from_url`, every option of redis-py's URLs).
- `redis+cluster://[user:password@]host:port[,host:port...]`, `rediss+cluster://...` (TLS): a Redis Cluster
  (`redis.asyncio.cluster.RedisCluster`). The nodes listed are where the client starts; it finds the others
  itself. Database 0 only; query options (`?ssl_cert_reqs=none`, ...) as redis-py reads them on `redis://` URLs.

The serving layer needs nothing a cluster refuses: every command names one key (pipelines are not
transactions, so their commands may go to different nodes), and the reads of several keys at once go
through `get_many`. See docs/identity.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url

RedisClient: TypeAlias = Redis | RedisCluster  # what `connect_redis` returns; both speak the commands used here

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
DEFAULT_PORT = 6379

# Redis cannot answer now (down, restarting, loading, a cluster node failed or its slots moving): wait and retry,
# or answer 503. Not the errors of a wrong command. See `unavailable`.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # BusyLoadingError included
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,  # MasterDownError included
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """A `redis+cluster://` URL read: the startup nodes and the client options the URL carries."""

    nodes: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)


def unavailable(error: BaseException) -> bool:
    """Whether `error` says Redis cannot answer now: one of UNAVAILABLE, or a cluster client that reached no node
    (redis-py raises RedisClusterException for that, from the connection error, and for wrong commands too)."""
    if isinstance(error, UNAVAILABLE):
        return True
    return isinstance(error, redis_errors.RedisClusterException) and isinstance(error.__cause__, UNAVAILABLE)


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def _node(text: str, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad node {text!r} in Redis Cluster URL {url!r}")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"a node without a host in Redis Cluster URL {url!r}")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in Redis Cluster URL {url!r}")
    return host, int(port)


def parse_cluster_url(url: str) -> ClusterAddress:
    """`redis+cluster://user:pw@h1:7000,h2:7001/0?opt=v` -> nodes and options. Raises ValueError."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # some Python versions check IPv6 brackets here: say it as for any other bad node
        raise ValueError(f"bad node in Redis Cluster URL {url!r} ({exc}): give host:port, or [IPv6]:port") from None
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster:// or rediss+cluster://): {url!r}")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_node(node.strip(), url) for node in hosts.split(",") if node.strip())
    if not nodes:
        raise ValueError(f"no node in Redis Cluster URL {url!r}: give at least one host:port")
    # redis-py reads the rest (credentials, TLS, query options) as it reads a one-host URL
    options: dict[str, Any] = dict(parse_url(urlunsplit((scheme, f"{userinfo}{at}node", parts.path, parts.query, ""))))
    options.pop("host", None)
    if options.pop("db", 0) not in (0, None):
        raise ValueError(f"a Redis Cluster has database 0 only: {url!r}")
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return ClusterAddress(nodes, options)


def connect_redis(url: str, **options: Any) -> RedisClient:
    """A client for `url` (not connected yet: the first command connects). `options` are redis-py's keyword
    arguments (timeouts, retry, decode_responses...); the URL's own query options win, as in redis-py."""
    if not is_cluster_url(url):
        return Redis.from_url(url, **options)
    address = parse_cluster_url(url)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
                        **{**options, **address.options})  # fmt: skip


async def get_many(redis: RedisClient, keys: Sequence[str]) -> list[Any]:
    """The values of `keys` in their order (None where missing): one MGET on a single Redis; on a cluster one MGET
    per hash slot, sent to the nodes in parallel (not atomic across slots; nothing here needs it to be)."""
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(list(keys))
    return await redis.mget(list(keys))
