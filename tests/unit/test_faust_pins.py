"""The private names of faust-streaming and aiokafka that orchestrator/stream/eos.py relies on, pinned (with
fetching.py and batching.py: the fetcher, table recovery, and the batches' sends).

eos.py fixes faust 0.15.3's exactly-once mode (docs/reliability.md) by overriding private methods and reading or
writing private attributes of faust and aiokafka: nothing in either library promises them. `PINS` lists each one
with the shape eos.py relies on, and `test_pin` checks it against the installed libraries without any service, so
an upgrade fails here, in one place, with the list of what moved and the lines of eos.py that need it, rather
than in the chaos test or in production. The scans below keep the list complete (every override of a library
member and every private attribute read in orchestrator/stream/ must be pinned) and current (every pin must still
be used). See docs/reliability.md, "Pinned private names".
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import faust
import faust.streams
import faust.tables.recovery
import mode.threads
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.consumer import subscription_state
from aiokafka.producer import transaction_manager
from faust.exceptions import ConsumerNotStarted
from faust.sensors.monitor import Monitor
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import Producer as BaseProducer
from faust.transport.producer import ProducerBuffer
from intervaltree import IntervalTree  # type: ignore[import-untyped]

import orchestrator.stream
from orchestrator.stream import eos
from orchestrator.stream.eos import (
    DrainableBuffer,
    EosProducer,
    EosTransactionManager,
    EosTransport,
    FixedConsumer,
    OrchestratorApp,
)
from orchestrator.stream.fetching import FETCH_MAX_WAIT_MS, FixedConsumerThread

ROOT = Path(__file__).parents[2]
STREAM = Path(orchestrator.stream.__file__).parent
EOS = Path(eos.__file__)
PATCHES = (EOS, EOS.with_name("fetching.py"), EOS.with_name("batching.py"))  # the modules that patch faust
PINNED_VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
LIBRARIES = ("faust", "mode", "aiokafka")
SEE = "see tests/unit/test_faust_pins.py and docs/reliability.md, 'Pinned private names'"

Kind = Literal["method", "async method", "property", "class attribute", "instance attribute", "module global"]


@dataclass(frozen=True)
class Pin:
    owner: Any  # the library class (or module) that defines the name
    name: str
    kind: Kind
    params: tuple[str, ...] = ()  # methods: the parameter names, `self` included
    ours: type | None = None  # when eos.py overrides the name: the class that does
    caller: tuple[Any, str, str] | None = None  # (owner, member, text): the library code that uses the name; an
    # override (or an attribute we write) does nothing once that code stops using it, and only its source shows it
    on: str = ""  # instance attributes: which object of `built` carries it (they are set in `__init__`)
    type_: type | None = None  # attributes: the type relied on
    default: type | None = None  # defaultdict attributes: the type of the value a missing key gets
    needle: str = ""  # what eos.py has where it relies on the name (default: the name)

    @property
    def label(self) -> str:
        owner = self.owner
        where = owner.__name__ if inspect.ismodule(owner) else f"{owner.__module__}.{owner.__qualname__}"
        return f"{where}.{self.name}"

    @property
    def used_at(self) -> list[int]:
        needle = self.needle or self.name
        pattern = ("(?<!\\w)" if needle[0].isidentifier() else "") + re.escape(needle)
        pattern += "(?!\\w)" if (needle[-1].isalnum() or needle[-1] == "_") else ""
        return [f"{path.name}:{n}" for path in PATCHES
                for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(pattern, line)]  # fmt: skip


Producer, Consumer, Thread = faust_aiokafka.Producer, faust_aiokafka.Consumer, faust_aiokafka.AIOKafkaConsumerThread
TxnManager = faust_consumer.TransactionManager
PINS = [
    # faust: the buffer of table changelog writes (fix 10.)
    Pin(ProducerBuffer, "_send_pending", "async method", ("self", "fut"), ours=DrainableBuffer,
        caller=(ProducerBuffer, "_handle_pending", "self._send_pending")),
    Pin(ProducerBuffer, "size", "property", needle="self.size"),
    Pin(ProducerBuffer, "message_sent", "instance attribute", on="buffer", type_=asyncio.Event),
    Pin(BaseProducer, "buffer", "instance attribute", on="faust producer", type_=ProducerBuffer,
        caller=(BaseProducer, "on_start", "self.buffer"), needle="self.buffer"),
    # faust: the producer and its transactional producers (fixes 1. and 3.)
    Pin(Producer, "_transaction_producers", "class attribute", type_=dict),
    Pin(Producer, "send", "async method",
        ("self", "topic", "key", "value", "partition", "timestamp", "headers", "transactional_id"),
        needle="self.producer.send("),  # also loops.py's send_marks, positionally
    Pin(Producer, "stop_transaction", "async method", ("self", "transactional_id")),
    # batching.py: sends straight to the (transactional) aiokafka producer; faust's current event set per batch
    Pin(Producer, "_ensure_producer", "method", ("self",)),
    Pin(faust.streams, "_current_event", "module global"),
    Pin(Producer, "maybe_begin_transaction", "async method", ("self", "transactional_id")),
    # faust: the transaction manager (fixes 1. to 4. and 8.)
    Pin(TxnManager, "send", "async method",
        ("self", "topic", "key", "value", "partition", "timestamp", "headers", "transactional_id"),
        ours=EosTransactionManager, caller=(faust.App, "maybe_start_producer", "return self.consumer.transactions"),
        needle="async def send("),
    Pin(TxnManager, "commit", "async method", ("self", "offsets", "start_new_transaction"), ours=EosTransactionManager,
        needle="async def commit("),  # called by FixedConsumer.force_commit
    Pin(TxnManager, "on_partitions_revoked", "async method", ("self", "revoked"), ours=EosTransactionManager,
        caller=(faust.App, "_on_partitions_revoked", "consumer.transactions.on_partitions_revoked")),
    Pin(TxnManager, "on_rebalance", "async method", ("self", "assigned", "revoked", "newly_assigned"),
        ours=EosTransactionManager,
        caller=(faust.App, "_on_partitions_assigned", "consumer.transactions.on_rebalance")),
    # faust: the consumer thread (fixes 5., 6., 7., 9. and the fetch wait)
    Pin(Thread, "_create_worker_consumer", "method", ("self", "transport"), ours=FixedConsumerThread,
        caller=(Thread, "_create_consumer", "self._create_worker_consumer")),
    Pin(Thread, "_seek_wait", "async method", ("self", "consumer", "partitions"), ours=FixedConsumerThread,
        caller=(Thread, "seek_wait", "self._seek_wait")),
    Pin(Thread, "_fetch_records", "async method", ("self", "consumer", "active_partitions", "timeout", "max_records"),
        ours=FixedConsumerThread, caller=(Thread, "getmany", "self._fetch_records")),
    Pin(Thread, "_highwaters", "async method", ("self", "partitions"), ours=FixedConsumerThread,
        caller=(Thread, "highwaters", "self._highwaters")),
    Pin(Thread, "_ensure_consumer", "method", ("self",)),
    Pin(mode.threads.QueueServiceThread, "call_thread", "async method", ("self", "fun", "args", "kwargs")),
    # faust: the consumer (fixes 5., 7., 8. and 9.)
    Pin(Consumer, "_new_consumer_thread", "method", ("self",), ours=FixedConsumer,
        caller=(faust_consumer.ThreadDelegateConsumer, "__init__", "self._new_consumer_thread()")),
    Pin(Consumer, "_thread", "instance attribute", on="consumer", type_=Thread),
    Pin(Consumer, "force_commit", "async method", ("self", "topics", "start_new_transaction"), ours=FixedConsumer,
        caller=(faust_consumer.Consumer, "commit", "self.force_commit("), needle="async def force_commit("),
    Pin(Consumer, "seek_wait", "async method", ("self", "partitions"), ours=FixedConsumer,
        needle="async def seek_wait("),
    Pin(Consumer, "position", "async method", ("self", "tp"), ours=FixedConsumer,
        caller=(Recovery, "_slurp_changelogs", "await self.app.consumer.position(tp)"), needle="async def position("),
    Pin(Consumer, "perform_seek", "async method", ("self",), ours=FixedConsumer,
        caller=(Recovery, "_resume_streams", "consumer.perform_seek()"), needle="async def perform_seek("),
    Pin(Consumer, "_commit_offsets", "async method", ("self", "offsets", "start_new_transaction")),
    Pin(Consumer, "_committed_offset", "instance attribute", on="consumer", type_=defaultdict, default=type(None)),
    Pin(Consumer, "_read_offset", "instance attribute", on="consumer", type_=defaultdict, default=type(None)),
    Pin(Consumer, "_acked", "instance attribute", on="consumer", type_=defaultdict, default=list),
    Pin(Consumer, "_acked_index", "instance attribute", on="consumer", type_=defaultdict, default=set),
    Pin(Consumer, "_gap", "instance attribute", on="consumer", type_=defaultdict, default=IntervalTree),
    Pin(IntervalTree, "chop", "method", ("self", "begin", "end", "datafunc"), needle=".chop("),
    Pin(TableManager, "on_commit", "method", ("self", "offsets")),
    Pin(Monitor, "on_tp_commit", "method", ("self", "tp_offsets")),
    # faust: table recovery (fix 7.; `test_the_recovery_patch_replaces_the_changelog_queue_wait_only` says more)
    Pin(faust.tables.recovery, "asyncio", "module global", needle='faust.tables.recovery, "asyncio"'),
    Pin(Recovery, "_slurp_changelogs", "async method", ("self",), needle="def poll_recovery_queue("),
    Pin(Recovery, "active_offsets", "instance attribute", on="recovery", type_=Counter),
    # faust: the transport and the app that make the pieces above
    Pin(faust_aiokafka.Transport, "Consumer", "class attribute", type_=type, ours=EosTransport,
        caller=(faust_aiokafka.Transport, "create_consumer", "self.Consumer("), needle="Consumer = FixedConsumer"),
    Pin(faust_aiokafka.Transport, "Producer", "class attribute", type_=type, ours=EosTransport,
        caller=(faust_aiokafka.Transport, "create_producer", "self.Producer("), needle="Producer = EosProducer"),
    Pin(faust_aiokafka.Transport, "TransactionManager", "class attribute", type_=type, ours=EosTransport,
        caller=(faust_aiokafka.Transport, "create_transaction_manager", "self.TransactionManager("),
        needle="TransactionManager = EosTransactionManager"),
    Pin(faust.App, "_new_transport", "method", ("self",), ours=OrchestratorApp,
        caller=(faust.App, "transport", "self._new_transport()")),
    # aiokafka: the consumer faust makes, and the producers of its transactions
    Pin(AIOKafkaConsumer, "_fetch_max_wait_ms", "instance attribute", on="aiokafka consumer", type_=int,  # we write it
        caller=(AIOKafkaConsumer, "start", "fetch_max_wait_ms=self._fetch_max_wait_ms")),
    Pin(AIOKafkaConsumer, "_subscription", "instance attribute", on="aiokafka consumer",
        type_=subscription_state.SubscriptionState),
    # public names, but of aiokafka.consumer.subscription_state, a module aiokafka does not document
    Pin(subscription_state.SubscriptionState, "subscription", "property", needle="_subscription.subscription"),
    Pin(subscription_state.Subscription, "assignment", "property", needle="subscription.assignment"),
    Pin(subscription_state.Assignment, "tps", "property", needle="assignment.tps"),
    Pin(subscription_state.Assignment, "state_value", "method", ("self", "tp"), needle="assignment.state_value"),
    Pin(subscription_state.TopicPartitionState, "position", "property", needle="state.position"),
    Pin(subscription_state.TopicPartitionState, "has_valid_position", "property"),
    Pin(subscription_state.TopicPartitionState, "paused", "property", needle="state.paused"),
    Pin(AIOKafkaProducer, "_txn_manager", "instance attribute", on="aiokafka producer",
        type_=transaction_manager.TransactionManager),
    Pin(transaction_manager.TransactionManager, "is_in_transaction", "method", ("self",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The objects whose `__init__` sets the instance attributes pinned, built as the worker builds them, without a
    broker (nothing connects before `start`): an instance attribute is only seen on an instance."""
    loop = asyncio.new_event_loop()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faust.tables.recovery, "asyncio", vars(faust.tables.recovery)["asyncio"])  # undone after
        datadir = str(tmp_path_factory.mktemp("pins"))
        app: Any = OrchestratorApp("pins", broker="kafka://localhost:9092", datadir=datadir,
                                   processing_guarantee="exactly_once", web_enabled=False, loop=loop)  # fmt: skip

        async def clients() -> tuple[AIOKafkaConsumer, AIOKafkaConsumer, AIOKafkaProducer]:  # in a running loop
            worker = app.consumer._thread._create_consumer(loop)  # as its thread does when it starts
            return worker, AIOKafkaConsumer(), AIOKafkaProducer(transactional_id="pins")

        worker, consumer, producer = loop.run_until_complete(clients())
        try:
            # The attributes eos.py writes are checked on objects that eos.py did not touch: on ours, a name the
            # library dropped would still be there, written by us.
            yield {"loop": loop, "app": app, "consumer": app.consumer, "recovery": app.tables.recovery,
                   "faust producer": faust_aiokafka.Producer(app.transport), "buffer": ProducerBuffer(loop=loop),
                   "worker consumer": worker, "aiokafka consumer": consumer, "aiokafka producer": producer}  # fmt: skip
        finally:
            for client in (worker, consumer, producer):
                loop.run_until_complete(client.stop())
            app.consumer._thread.thread_loop.close()  # a ServiceThread makes its loop when it is made
            loop.close()


def _parameters(function: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def _member(owner: Any, name: str) -> Any:
    """The function behind mode's decorators (`Service.task`, `stampede`) and properties, else what is there."""
    found = inspect.getattr_static(owner, name, None)
    found = found.fget if isinstance(found, property) else getattr(found, "fun", found)
    return inspect.unwrap(found) if callable(found) else found


def _source(owner: Any, member: str) -> str:
    return inspect.getsource(_member(owner, member))


def _problems(pin: Pin, built: dict[str, Any]) -> list[str]:
    method = pin.kind.endswith("method")
    found = _member(pin.owner, pin.name) if method else inspect.getattr_static(pin.owner, pin.name, None)
    problems = []
    if pin.kind in ("method", "async method"):
        if not inspect.isfunction(found):
            return [f"no such method (found {found!r})"]
        if _parameters(found) != pin.params:
            problems.append(f"parameters {_parameters(found)}, relied on: {pin.params}")
        if inspect.iscoroutinefunction(found) != (pin.kind == "async method"):
            problems.append(f"relied on as {'a coroutine' if pin.kind == 'async method' else 'not a coroutine'}")
        override = getattr(pin.ours, pin.name, None)
        if pin.ours is not None and not (
            inspect.isfunction(override)
            and _parameters(override) == pin.params
            and inspect.iscoroutinefunction(override) == (pin.kind == "async method")
        ):
            problems.append(f"{pin.ours.__name__}'s override does not match: {override!r}")
    elif pin.kind == "property":
        if not isinstance(found, property | cached_property):
            problems.append(f"not a property (found {found!r})")
    elif pin.kind == "class attribute":
        if pin.type_ is not None and not isinstance(found, pin.type_):
            problems.append(f"not a class attribute of type {pin.type_.__name__} (found {found!r})")
        elif pin.ours is not None and isinstance(found, type) and not issubclass(getattr(pin.ours, pin.name), found):
            problems.append(f"{pin.ours.__name__}.{pin.name} no longer subclasses {found!r}")
    elif pin.kind == "module global":
        if pin.name not in vars(pin.owner):
            problems.append("no such global")
    else:
        instance = built[pin.on]
        assert isinstance(instance, pin.owner)
        value = vars(instance).get(pin.name)
        if pin.name not in vars(instance):
            problems.append(f"not set by __init__ on {type(instance).__name__}")
        elif pin.type_ is not None and not isinstance(value, pin.type_):
            problems.append(f"of type {type(value).__name__}, relied on: {pin.type_.__name__}")
        elif pin.default is not None and type(value.default_factory()) is not pin.default:
            problems.append(f"a missing key gets {value.default_factory()!r}, relied on: a {pin.default.__name__}")
    if pin.caller is not None:
        owner, member, text = pin.caller
        try:
            source = _source(owner, member)
        except (AttributeError, TypeError, OSError) as exc:
            source = f"{exc!r}"
        if text not in source:
            problems.append(f"{owner.__qualname__}.{member} no longer has `{text}`: what eos.py does there is dead")
    return problems


@pytest.mark.parametrize("pin", PINS, ids=[pin.label for pin in PINS])
def test_pin(pin: Pin, built: dict[str, Any]) -> None:
    problems = _problems(pin, built)
    where = f"orchestrator/stream/{','.join(pin.used_at)}"
    assert not problems, f"{pin.label} ({pin.kind}): {'; '.join(problems)}\n  relied on at {where} ({SEE})"


def test_installed_versions_are_the_pinned_ones() -> None:
    installed = {name: metadata.version(name) for name in PINNED_VERSIONS}
    declared = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if re.sub(r"\[.*\]", "", name) in PINNED_VERSIONS:
            declared[re.sub(r"\[.*\]", "", name)] = version
    assert declared == PINNED_VERSIONS, (
        f"pyproject.toml pins {declared}, tests/unit/test_faust_pins.py pins {PINNED_VERSIONS}: change them together"
    )
    assert installed == PINNED_VERSIONS, (
        f"installed {installed}, pinned {PINNED_VERSIONS}. orchestrator/stream/eos.py patches private names of the "
        f"pinned versions: make every test of tests/unit/test_faust_pins.py pass (each failure names the lines of "
        f"eos.py relying on the name), read the new faust source for every row of docs/reliability.md's table, run "
        f"the chaos test (tests/chaos/), then change PINNED_VERSIONS and pyproject.toml together ({SEE})"
    )


def test_the_app_is_built_of_our_classes(built: dict[str, Any]) -> None:
    """The overrides take effect only if faust builds the app of our classes, and our own names (cached properties
    below) take effect only if faust's `__init__` sets no instance attribute of that name over them."""
    app, consumer = built["app"], built["consumer"]
    assert type(app.transport) is EosTransport
    assert type(app.producer) is EosProducer and type(app.producer.buffer) is DrainableBuffer
    assert app.producer.buffer.app is built["app"]
    assert type(consumer) is FixedConsumer and type(consumer._thread) is FixedConsumerThread
    assert type(consumer.transactions) is EosTransactionManager
    assert consumer.transactions.producer is app.producer and consumer.transactions.consumer is consumer
    with pytest.raises(ConsumerNotStarted):
        consumer._thread._ensure_consumer()
    for instance in (consumer, consumer._thread):
        ours = [name for name, value in vars(type(instance)).items() if isinstance(value, cached_property)]
        assert ours and not set(ours) & set(vars(instance)), f"faust sets {set(ours) & set(vars(instance))}"


def test_the_worker_consumer_waits_at_most_fetch_max_wait_ms(built: dict[str, Any]) -> None:
    assert built["worker consumer"]._fetch_max_wait_ms == FETCH_MAX_WAIT_MS


def test_the_subscription_state_read_by_fetch_records(built: dict[str, Any]) -> None:
    """What `FixedConsumerThread._fetch_records` reads of aiokafka's subscription state, used as it uses it."""
    state_of = built["aiokafka consumer"]._subscription
    tp = TopicPartition("pins", 0)

    async def scenario() -> None:  # aiokafka makes futures of the running loop
        state_of.assign_from_user({tp})
        assignment = state_of.subscription.assignment
        assert assignment.tps == {tp}
        state = assignment.state_value(tp)
        assert not state.has_valid_position and not state.paused
        state.seek(7)
        assert state.has_valid_position and state.position == 7
        state_of.pause(tp)
        assert state.paused
        state_of.assign_from_user({tp})
        assert state_of.subscription.assignment is not assignment  # how a reassignment during a fetch shows

    built["loop"].run_until_complete(scenario())


def test_a_transactional_producer_tells_whether_a_transaction_is_open(built: dict[str, Any]) -> None:
    assert built["aiokafka producer"]._txn_manager.is_in_transaction() is False


def test_the_recovery_patch_replaces_the_changelog_queue_wait_only() -> None:
    """`_poll_recovery_queue` swaps the `asyncio` of faust.tables.recovery for a copy whose `wait_for` caps the
    timeout: that is right only while the module reaches `wait_for` through that global, and only to wait on the
    changelog queue."""
    source = inspect.getsource(faust.tables.recovery)
    assert re.search(r"^import asyncio$", source, re.M), "faust.tables.recovery no longer imports asyncio"
    assert len(re.findall(r"\bwait_for\b", source)) == 1, "faust.tables.recovery calls wait_for elsewhere too"
    slurp = re.sub(r"\s+", "", _source(Recovery, "_slurp_changelogs"))
    assert "awaitasyncio.wait_for(changelog_queue.get(),timeout=5.0)" in slurp, "the changelog queue wait moved"


def test_faust_calls_position_only_where_it_did() -> None:
    """`FixedConsumer.position` answers what recovery's "aborted transactions" shortcut needs, not a position
    (fix 7.): a new caller of `position` in faust would get that answer."""
    package = Path(faust.__file__).parent
    calls = {str(path.relative_to(package)): len(re.findall(r"\.position\(", path.read_text()))
             for path in package.rglob("*.py")}  # fmt: skip
    assert {path: n for path, n in calls.items() if n} == {
        "tables/recovery.py": 1,  # Recovery._slurp_changelogs: the shortcut, through app.consumer
        "transport/consumer.py": 1,  # ThreadDelegateConsumer.position: to its thread
        "transport/drivers/aiokafka.py": 1,  # AIOKafkaConsumerThread._seek_wait: of the aiokafka consumer
        "transport/drivers/confluent.py": 1,  # the confluent driver, not used
    }, f"faust's calls of position() changed: check each against FixedConsumer.position ({SEE})"


def _library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in LIBRARIES]


def _body_names(cls: type) -> set[str]:
    """The names the class statement defines (not those its metaclasses add, such as mode's `logger`)."""
    names = set()
    for node in ast.parse(inspect.getsource(cls)).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return {name for name in names if not name.startswith("__")}


def test_every_override_of_a_library_member_is_pinned() -> None:
    """A name our classes define that a faust, mode or aiokafka base class defines too is an override: pinned if
    meant, renamed if not (a private name of ours that faust starts using would override it silently)."""
    pinned = {(pin.ours, pin.name) for pin in PINS}
    unpinned = []
    for path in sorted(STREAM.glob("*.py")):
        module = __import__(f"orchestrator.stream.{path.stem}", fromlist=["_"])
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            for name in _body_names(cls):
                if (cls, name) in pinned:
                    continue
                for base in _library_bases(cls):
                    if name in vars(base):
                        unpinned.append(f"{cls.__name__}.{name} overrides {base.__module__}.{base.__qualname__}")
                        break
    assert not unpinned, f"unpinned overrides ({SEE}): {unpinned}"


def _private_reads(path: Path) -> dict[str, list[int]]:
    """Private attributes read or written in this file that it does not define itself."""
    tree = ast.parse(path.read_text())
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    own.add(target.id)
                elif isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self":
                    own.add(target.attr)
    found: dict[str, list[int]] = defaultdict(list)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            found[node.attr].append(node.lineno)
    return {name: lines for name, lines in found.items() if name not in own}


DOCUMENTED = {"_exit"}  # os._exit: a private-looking name, but documented public API


def test_every_private_name_read_in_stream_is_pinned() -> None:
    pinned = {pin.name for pin in PINS}
    unpinned = {f"{path.name}:{lines}": name for path in sorted(STREAM.glob("*.py"))
                for name, lines in _private_reads(path).items() if name not in pinned | DOCUMENTED}  # fmt: skip
    assert not unpinned, f"private names of a library used but not pinned ({SEE}): {unpinned}"


def test_every_pin_is_still_relied_on() -> None:
    stale = [pin.label for pin in PINS if not pin.used_at]
    assert not stale, f"pinned but no longer in {[p.name for p in PATCHES]} (take them out of PINS): {stale}"
