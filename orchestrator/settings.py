"""All settings in one frozen object, read once from `ORCH_*` environment variables (or flags).

Topic names are declared here and nowhere else; `stream/topology.py` turns them into Faust objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.contract.events import MAX_EVENT_BYTES
from orchestrator.engine.identity import DEV_IDENTITY_SECRET

ENV_PREFIX = "ORCH_"
DEV_COUPON_SECRET = "orchestrator-dev-secret"
PLACEHOLDER = "CHANGE-ME"  # docker-compose.yml's stand-in secrets
MIN_API_TOKEN = 32  # characters: a shorter bearer token can be guessed (`openssl rand -hex 32` gives 64)
LOOPBACK = ("127.", "localhost", "[::1]", "::1")
TABLES = ("customers", "timers", "parked", "kpis", "held")  # the worker's Faust tables (stream/topology.py)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # production: `orchestrator doctor` wants your own secrets (not the development defaults below)
    env: Literal["development", "production"] = "development"
    journeys_dir: Path = Path("journeys")
    # Keys coupon codes so they cannot be guessed from action ids; set your own in production.
    coupon_secret: SecretStr = SecretStr(DEV_COUPON_SECRET)

    # --- Kafka and Redis
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # redis://, rediss://, unix:// (one Redis) or redis+cluster://host:port[,host:port...] (a Redis Cluster;
    # rediss+cluster:// with TLS): orchestrator/serving/connect.py
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "orch:"
    # Keys the hashes of identifiers (emails, phones, cards) in the identity graph; set your own in production.
    identity_secret: SecretStr = SecretStr(DEV_IDENTITY_SECRET.decode())

    # --- HTTP API (`orchestrator api`)
    api_token: SecretStr | None = None  # required by the API: every endpoint needs `Authorization: Bearer <token>`
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)

    # --- topics (the worker creates them when missing)
    app_id: str = Field(default="orchestrator", pattern=r"^[A-Za-z0-9._-]+$")
    topic_touchpoints: str = "touchpoints"
    topic_dlq: str = "touchpoints.dlq"
    topic_audit: str = "journeys.audit"  # every decision (entered, sent, suppressed, merged, ...), key = customer
    topic_actions_prefix: str = "actions."  # + channel: actions.email, actions.instore, ...
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    max_event_bytes: int = Field(default=MAX_EVENT_BYTES, ge=1024)  # larger inputs go to the DLQ (simulate: skipped)

    # --- worker
    store: str = "rocksdb://"  # production default: state larger than RAM; tests use memory://
    data_dir: Path = Path(".orchestrator-data")
    # exactly_once: Kafka transactions (docs/reliability.md); at_least_once: faster, may repeat actions after a crash
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"
    # seconds between commits: under exactly_once, actions become visible to read_committed consumers at commits
    commit_interval: float = Field(default=0.25, gt=0, le=10)
    # a worker that died without leaving the group keeps its partitions this long (Kafka's session timeout)
    session_timeout: float = Field(default=10.0, ge=6, le=300)
    # seconds between watermark marks: how often the input's event-time progress reaches the customer agent,
    # which then releases the records and fires the timers it has passed (docs/streaming.md)
    timer_interval: float = Field(default=0.1, gt=0, le=1)
    # seconds of disorder allowed within one input partition (event time): a record older than its partition's
    # newest minus this is late (processed at once, audited `late`); every record waits about this long
    max_lateness: float = Field(default=0.5, ge=0, le=3600)
    # the tables' changelogs roll a segment this often, so Kafka's log cleaner compacts them to about one record per
    # key: a worker starting (it recovers its tables from the changelogs) reads that much, not every update since
    # the topic was created (Kafka's default: a week)
    changelog_segment_seconds: int = Field(default=60, ge=10)
    # records an agent takes at once (or what came within ORCH_BATCH_WAIT seconds): their table writes, Kafka records
    # and Redis writes go out together when the batch is done (stream/batching.py)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_wait: float = Field(default=0.01, gt=0, le=1)
    # --- back-pressure (docs/overload.md): what a worker holds in memory under a backlog
    # records handed from the fetcher to the agents per poll; faust's default (none) hands over, decoded, every
    # record prefetched: up to 8 MiB per partition, since the fetch size must take the largest input
    max_poll_records: int = Field(default=500, ge=1)
    # events queued per agent; at 80 % the worker stops fetching the partition, at 40 % it resumes (faust: 4096)
    stream_buffer: int = Field(default=1024, ge=16)
    # Prometheus metrics of the worker at http://<host>:<port>/metrics (0: not served)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_enabled: bool = False
    log_level: str = "warning"

    @property
    def topic_customers(self) -> str:
        """Internal: events and timer firings re-keyed by customer key (the worker's own topic)."""
        return f"{self.app_id}.customers"

    @property
    def topic_baskets(self) -> str:
        """Internal, one partition: the purchases' baskets and the partitions' seals (stream/learning.py)."""
        return f"{self.app_id}.baskets"

    @property
    def topic_journeys(self) -> str:
        """Internal, compacted: every journey version the worker ever ran, so runs in flight can finish."""
        return f"{self.app_id}.journeys"

    def changelog_topic(self, table: str) -> str:
        """Internal, compacted: Faust's changelog of one of the worker's `TABLES`, partitioned like `customers`."""
        return f"{self.app_id}-{table}-changelog"

    def actions_topic(self, channel: str) -> str:
        return f"{self.topic_actions_prefix}{channel}"

    def development_secrets(self) -> list[str]:
        """The secrets still at a value anyone who reads this repository knows: coupon codes could be predicted and
        hashed emails guessed. Production refuses to start on them (`commands.common.service_settings`)."""
        found = []
        coupon = self.coupon_secret.get_secret_value()
        if coupon == DEV_COUPON_SECRET or PLACEHOLDER in coupon.upper():
            found.append("ORCH_COUPON_SECRET")
        identity = self.identity_secret.get_secret_value()
        if identity == DEV_IDENTITY_SECRET.decode() or PLACEHOLDER in identity.upper():
            found.append("ORCH_IDENTITY_SECRET")
        return found

    def kafka_on_loopback(self) -> bool:
        return all(server.strip().startswith(LOOPBACK) for server in self.kafka_bootstrap_servers.split(","))
