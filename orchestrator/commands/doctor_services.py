"""The doctor's questions to Kafka and Redis: one short conversation each, bounded by a timeout, never a hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from orchestrator.commands.doctor import Check, not_checked
from orchestrator.serving.connect import RedisClient, connect_redis
from orchestrator.settings import TABLES, Settings

KAFKA_TIMEOUT = 3.0
TRANSACTION_TIMEOUT = 5.0  # a new broker creates __transaction_state (50 partitions) on the first transactional client
REDIS_TIMEOUT = 3.0
MIN_REDIS = (4, 0)  # serving/redis.py: HSET with several fields at once
TXN_CONFIGS = ("transaction.state.log.replication.factor", "transaction.state.log.min.isr")
KAFKA_FIELDS = ("kafka_bootstrap_servers", "app_id", "topic_touchpoints", "topic_dlq", "topic_audit",
                "topic_actions_prefix", "topic_partitions", "topic_replication", "processing_guarantee")  # fmt: skip


def masked(url: str) -> str:
    """A Redis URL as it may be printed: no password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}").geturl()


def redis_client(url: str) -> RedisClient:
    """The doctor's Redis client, from the serving layer's factory (a single Redis or a cluster); raises
    ValueError for a URL it cannot use."""
    return connect_redis(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)


def redis_url_problem(url: str) -> str | None:
    """What is wrong with ORCH_REDIS_URL before connecting (its scheme), or None."""
    try:
        redis_client(url)  # builds a pool, connects to nothing
    except ValueError as exc:
        return f"ORCH_REDIS_URL={masked(url)}: {exc}"
    return None


@contextmanager
def quiet(name: str) -> Iterator[None]:
    """aiokafka logs every failed connection at ERROR; the doctor says it in one line instead."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True, slots=True)
class Cluster:
    brokers: int
    partitions: dict[str, int]  # the expected topics that exist, with their partition counts
    txn_configs: dict[str, str]  # TXN_CONFIGS as the first broker has them (empty if it would not say)


async def _ask_kafka(settings: Settings, names: list[str]) -> Cluster:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                request_timeout_ms=int(KAFKA_TIMEOUT * 1000))  # fmt: skip
    try:
        await admin.start()
        brokers = (await admin.describe_cluster())["brokers"]
        existing = set(await admin.list_topics()) & set(names)  # describing a missing topic may auto-create it
        described = await admin.describe_topics(sorted(existing)) if existing else []
        configs: dict[str, str] = {}
        try:
            resource = ConfigResource(ConfigResourceType.BROKER, str(brokers[0]["node_id"]), dict.fromkeys(TXN_CONFIGS))
            for response in await admin.describe_configs([resource]):
                for found in response.to_object()["resources"]:
                    configs.update({c["config_names"]: c["config_value"] for c in found["config_entries"]})
        except KafkaError:
            pass  # not allowed to read broker configs: only the explanation of a transaction failure is shorter
        return Cluster(len(brokers), {t["topic"]: len(t["partitions"]) for t in described}, configs)
    finally:
        await admin.close()


def _expected(settings: Settings, channels: Collection[str] | None) -> list[tuple[str, int, bool]]:
    """(topic, partitions, whether that count must match: the tables are co-partitioned with `customers`)"""
    from orchestrator.stream.admin import wanted_topics

    strict = {settings.topic_customers}
    topics = [(t.name, t.num_partitions, t.name in strict) for t in wanted_topics(settings, channels or ())]
    topics += [(settings.changelog_topic(table), settings.topic_partitions, True) for table in TABLES]
    return [t for t in topics if t[0] != settings.topic_journeys]  # any count will do: the archive reads all


def _topic_checks(settings: Settings, cluster: Cluster, channels: Collection[str] | None) -> list[Check]:
    expected = _expected(settings, channels)
    found: list[Check] = []
    for name, partitions, strict in expected:
        have = cluster.partitions.get(name)
        if have is None or have == partitions:
            continue
        if strict:
            found.append(Check(
                "topics", "problem",
                f"{name} has {have} partition(s) but ORCH_TOPIC_PARTITIONS={partitions}: the worker's tables must "
                "be partitioned like it", f"set ORCH_TOPIC_PARTITIONS={have}, or a new ORCH_APP_ID (new topics)",
            ))  # fmt: skip
        else:
            found.append(Check("topics", "warning", f"{name} has {have} partition(s), ORCH_TOPIC_PARTITIONS is "
                               f"{partitions}: the worker uses it as it is"))  # fmt: skip
    missing = [name for name, _, _ in expected if name not in cluster.partitions]
    if missing and settings.topic_replication > cluster.brokers:
        found.append(Check(
            "topics", "problem",
            f"{len(missing)} topic(s) to create with ORCH_TOPIC_REPLICATION={settings.topic_replication} on a cluster "
            f"of {cluster.brokers} broker(s)", f"set ORCH_TOPIC_REPLICATION={cluster.brokers} or less",
        ))  # fmt: skip
    if not found:
        exist = len(expected) - len(missing)
        created = f", {len(missing)} will be created by the worker ({', '.join(missing)})" if missing else ""
        unknown = "; the actions topics are not checked (journeys not valid)" if channels is None else ""
        found.append(Check("topics", "ok", f"{exist} of {len(expected)} exist as expected{created}{unknown}"))
    return found


async def _transactions(settings: Settings, cluster: Cluster) -> Check:
    if settings.processing_guarantee != "exactly_once":
        return Check("transactions", "ok", "not needed (ORCH_PROCESSING_GUARANTEE=at_least_once)")
    # A throwaway id of its own: the worker's are <app_id>-<group>-<partition>, so none of them is fenced.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                transactional_id=f"{settings.app_id}-doctor",
                                request_timeout_ms=int(TRANSACTION_TIMEOUT * 1000))  # fmt: skip
    fallback = "or ORCH_PROCESSING_GUARANTEE=at_least_once (docs/reliability.md)"
    try:
        async with asyncio.timeout(TRANSACTION_TIMEOUT):
            await producer.start()
    except TimeoutError:
        factor = int(cluster.txn_configs.get(TXN_CONFIGS[0], "0") or 0)
        if factor > cluster.brokers:
            why = f"the broker has {TXN_CONFIGS[0]}={factor} but the cluster {cluster.brokers} broker(s)"
            fix = f"set {TXN_CONFIGS[0]} and {TXN_CONFIGS[1]} to at most {cluster.brokers} on the brokers, {fallback}"
        else:
            why = f"no transaction coordinator answered within {TRANSACTION_TIMEOUT:.0f} s"
            fix = f"check the brokers' logs and the {TXN_CONFIGS[0]} setting, or run the doctor again, {fallback}"
        return Check("transactions", "problem", f"exactly_once needs Kafka transactions: {why}", fix)
    except KafkaError as exc:
        return Check("transactions", "problem", f"exactly_once needs Kafka transactions: {type(exc).__name__}: {exc}",
                     f"allow this client transactional ids {settings.app_id}-* (ACLs), {fallback}")
    finally:
        await producer.stop()
    return Check("transactions", "ok", "allowed (ORCH_PROCESSING_GUARANTEE=exactly_once)")


async def check_kafka(settings: Settings, channels: Collection[str] | None, bad: Collection[str]) -> list[Check]:
    """Reachable; the expected topics and partitions; transactions when exactly_once."""
    blocked = not_checked("kafka", bad, KAFKA_FIELDS)
    if blocked:
        return [blocked]
    servers = settings.kafka_bootstrap_servers
    fix = "start Kafka, or set ORCH_KAFKA_BOOTSTRAP_SERVERS to its HOST:PORT"
    with quiet("aiokafka"):
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT):
                cluster = await _ask_kafka(settings, [name for name, _, _ in _expected(settings, channels)])
        except (TimeoutError, KafkaError, OSError, ValueError) as exc:
            reason = f"no answer within {KAFKA_TIMEOUT:.0f} s" if isinstance(exc, TimeoutError) else _kafka_reason(exc)
            return [Check("kafka", "problem", f"cannot reach Kafka at {servers}: {reason}; topics and transactions "
                                              "not checked", fix)]  # fmt: skip
        found = [Check("kafka", "ok", f"{servers}: {cluster.brokers} broker(s)")]
        found += _topic_checks(settings, cluster, channels)
        found.append(await _transactions(settings, cluster))
    return found


def _kafka_reason(exc: BaseException) -> str:
    text = str(exc)
    if "Unable to bootstrap" in text:
        return "no broker answered (connection refused, or unknown host)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------ Redis


async def check_redis(settings: Settings, bad: Collection[str]) -> list[Check]:
    """Reachable; its version, role and eviction policy."""
    blocked = not_checked("redis", bad, ["redis_url"])
    if blocked:
        return [blocked]
    url = masked(settings.redis_url)
    client = redis_client(settings.redis_url)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            if isinstance(client, RedisCluster):  # every primary answers: {node: its INFO}
                nodes: dict[str, dict[str, Any]] = await client.info(target_nodes=RedisCluster.PRIMARIES)
            else:
                nodes = {url: await client.info()}
    except redis_errors.AuthenticationError as exc:
        return [Check("redis", "problem", f"Redis at {url} refused the login: {exc}",
                      "put the right user and password in ORCH_REDIS_URL (redis://USER:PASSWORD@HOST:PORT/DB)")]
    except (TimeoutError, redis_errors.RedisError, OSError) as exc:
        reason = f"no answer within {REDIS_TIMEOUT:.0f} s" if isinstance(exc, TimeoutError) else str(exc)
        return [Check("redis", "problem", f"cannot reach Redis at {url}: {reason}",
                      "start Redis, or set ORCH_REDIS_URL (redis://HOST:PORT/DB)")]  # fmt: skip
    finally:
        await client.aclose()
    if isinstance(client, RedisCluster):
        found = [check for node, info in sorted(nodes.items()) for check in _redis_checks(node, info, cluster=True)]
        if all(check.status == "ok" for check in found):
            return [Check("redis", "ok", f"{url}: a Redis Cluster of {len(nodes)} primaries ({found[0].detail})")]
        return [check for check in found if check.status != "ok"]
    return _redis_checks(url, nodes[url])


def _redis_checks(url: str, info: dict[str, Any], cluster: bool = False) -> list[Check]:
    version = str(info.get("redis_version", "?"))
    mode, role, policy = info.get("redis_mode", "standalone"), info.get("role", "master"), info.get("maxmemory_policy")
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    found = []
    if numbers < MIN_REDIS:
        found.append(Check("redis", "problem", f"Redis {version} at {url} is too old: the serving layer needs "
                           f"{MIN_REDIS[0]}.{MIN_REDIS[1]}+", "upgrade Redis (7.x)"))  # fmt: skip
    if role != "master":
        found.append(Check("redis", "problem", f"Redis at {url} is a read-only {role}: the worker writes to it",
                           "point ORCH_REDIS_URL at the primary"))  # fmt: skip
    if mode == "cluster" and not cluster:
        found.append(Check("redis", "warning", f"Redis at {url} is a cluster node: keys on other nodes answer MOVED",
                           "point ORCH_REDIS_URL at the cluster: redis+cluster://HOST:PORT"))  # fmt: skip
    if isinstance(policy, str) and policy.startswith("allkeys"):
        found.append(Check("redis", "warning", f"maxmemory-policy is {policy}: Redis may evict identity links and "
                           "summaries when full", "set maxmemory-policy noeviction"))  # fmt: skip
    if not any(check.status == "problem" for check in found):
        found.insert(0, Check("redis", "ok", f"{url}: Redis {version} ({mode}, {role})"))
    return found
