"""The `orchestrator` command: the offline commands here (validate, init, doctor, simulate, report, affinities),
those against Kafka and Redis in `services.py`. Exit codes: `common.py`."""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import click
import orjson

from orchestrator.commands import services
from orchestrator.commands.common import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    err,
    is_settings_error,
    journeys_option,
    load_or_exit,
    read_settings,
    settings_exit,
)
from orchestrator.commands.deploys import Deploy, load_deploys, parse_deploys, schedule
from orchestrator.contract.journeys import Journey
from orchestrator.contract.loader import Loaded, load
from orchestrator.engine import CustomerState, Engine
from orchestrator.measurement.explain import diff_actions, render_diff, timelines
from orchestrator.process import cyclic_gc_paused, tune_gc
from orchestrator.settings import ENV_PREFIX, Settings
from orchestrator.shipped import Part, shipped
from orchestrator.simulate import EventLog, Result, Simulator, read_event_lines
from orchestrator.timefmt import format_ms, parse_rfc3339, to_ms


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": ENV_PREFIX[:-1]})
@click.version_option(package_name="orchestrator")
def cli() -> None:
    """Event-streaming journey orchestrator for omnichannel retail marketing.

    Settings come from ORCH_* environment variables; see README.md.
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check journey files (and policy.yaml) without running anything.

    PATHS are files or folders (default: journeys/). Every problem is listed with its file,
    line and step; the exit code is 0 when all is valid, 1 otherwise.
    """
    targets = list(paths) or [read_settings().journeys_dir]
    loaded = load(targets)
    for problem in loaded.problems:
        click.echo(str(problem))
    if not loaded.ok:
        click.echo(f"{len(loaded.problems)} problem(s) in {', '.join(map(str, targets))}")
        raise SystemExit(EXIT_INPUT)
    policy = loaded.policy_file or "built-in defaults (no policy.yaml)"
    names = ", ".join(f"{j.id} v{j.version}" for j in loaded.journeys)
    offers = f"; offers: {len(loaded.catalogue.offers)} in {loaded.catalogue_file}" if loaded.catalogue_file else ""
    click.echo(f"ok: {len(loaded.journeys)} journey(s) valid ({names}); contact policy: {policy}{offers}")


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(folder: Path, force: bool) -> None:
    """Start a project: copy the shipped journeys and example log into FOLDER (default: here).

    Writes FOLDER/journeys/*.yaml (four journeys and policy.yaml) and FOLDER/examples/events.jsonl, then
    `orchestrator validate FOLDER/journeys` and `orchestrator simulate --journeys FOLDER/journeys --events
    FOLDER/examples/events.jsonl` run as they are. Exit 1 without writing anything if a file exists (unless --force).
    """
    parts: tuple[Part, ...] = ("journeys", "examples")
    plan = [(folder / part / item.name, item) for part in parts
            for item in sorted(shipped(part).iterdir(), key=lambda i: i.name)
            if item.name.endswith((".yaml", ".jsonl"))]  # fmt: skip
    existing = [str(target) for target, _ in plan if target.exists()]
    if existing and not force:
        err(f"{existing[0]}: already exists ({len(existing)} file(s) in all); nothing written (use --force)")
        raise SystemExit(EXIT_INPUT)
    try:
        for target, item in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.read_bytes())
    except OSError as exc:
        err(f"{exc.filename or folder}: cannot write: {exc.strerror or exc}")
        raise SystemExit(EXIT_INPUT) from None
    click.echo(f"wrote {len(plan)} files to {folder}: try `orchestrator simulate --journeys {folder / 'journeys'} "
               f"--events {folder / 'examples' / 'events.jsonl'} --explain`")


def _skipped(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> frozenset[str]:
    from orchestrator.commands.doctor import skipped

    try:
        return skipped(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@journeys_option
@click.option("--skip", "skip", multiple=True, callback=_skipped, metavar="CHECK[,CHECK]",
              help="Do not run these checks: journeys, kafka (also topics and transactions), redis, metrics, api.")
@click.option("--json", "as_json", is_flag=True, help="Print {ok, checks: [{name, status, detail, fix}]} as JSON.")
def doctor(journeys_dir: Path | None, skip: frozenset[str], as_json: bool) -> None:
    """Check that this machine can run the worker and the API: Python, the ORCH_* settings, the journeys,
    Kafka (reachable, topics and partitions, transactions for exactly_once), Redis, the metrics and API ports.

    One line per check: ok, warning or problem, and for a problem how to fix it. Exit 0 when there is no
    problem (warnings allowed), 1 otherwise. Kafka and Redis are given 3 s each, transactions 5 s.
    """
    from orchestrator.commands.doctor import option_variables, print_report, run_checks

    report = run_checks(journeys_dir, skip, known=option_variables(cli))
    if as_json:
        click.echo(orjson.dumps(report.as_json()).decode())
    else:
        print_report(report)
    if not report.ok:
        raise SystemExit(EXIT_INPUT)


def _parse_until(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return to_ms(parse_rfc3339(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_deploys(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[Deploy, ...]:
    return parse_deploys(values)


def _read_events(path: str, settings: Settings) -> EventLog:
    try:
        if path == "-":
            log = read_event_lines(sys.stdin.buffer, settings.max_event_bytes)
        else:
            with open(path, "rb") as handle:
                log = read_event_lines(handle, settings.max_event_bytes)
    except OSError as exc:
        err(f"{path}: cannot read the event log: {exc.strerror or exc}")
        raise SystemExit(EXIT_INPUT) from None
    for bad in log.bad:
        err(f"{path}:{bad.line}: skipped: {bad.reason}")
    return log


PROGRESS_FROM = 50_000  # events: below this a run takes well under a few seconds


def _engine(loaded: Loaded, settings: Settings, retired: list[Journey] | None = None) -> Engine:
    return Engine.of(loaded, retired=retired or (), secret=settings.coupon_secret.get_secret_value().encode())


SUMMED = frozenset({"suppressed"})  # the audit records `_summary` counts: all a run needs when it prints no audit


def _run(
    engine: Engine, log: EventLog, until: int | None, settings: Settings, *, explain: bool,
    deploys: list[tuple[int, Engine]] | None = None, arrival_order: bool = False, audit: bool = True,
    on_day_end: Callable[[int, Mapping[str, CustomerState]], None] | None = None,
) -> Result:  # fmt: skip
    simulator = Simulator(engine, record_events=explain, audit_kinds=None if audit else SUMMED,
                          identity_secret=settings.identity_secret.get_secret_value().encode(),
                          on_day_end=on_day_end)  # fmt: skip
    if arrival_order:
        return simulator.run_in_arrival_order(log.arrival, int(settings.max_lateness * 1000), until)
    if len(log.events) < PROGRESS_FROM:
        return simulator.run(log.events, until, deploys or ())
    with click.progressbar(log.events, label="simulating", file=sys.stderr) as events:
        return simulator.run(events, until, deploys or ())


def _counted(total: int, what: str, by: Counter[str]) -> str:
    """`5 suppressed (holdout 2, no_consent 3)`"""
    detail = ", ".join(f"{key} {n}" for key, n in sorted(by.items()))
    return f"{total} {what}" + (f" ({detail})" if detail else "")


def _summary(result: Result, log: EventLog, deploys: int = 0) -> str:
    suppressed = Counter(r["reason"] for r in result.audit if r["kind"] == "suppressed")
    parts = [
        f"{result.events} events for {len(result.states)} customers",
        f"{len(log.bad)} bad line(s) skipped",
        f"{result.duplicates} duplicate(s) ignored",
        _counted(len(result.actions), "action(s)", Counter(a["channel"] for a in result.actions)),
        _counted(suppressed.total(), "suppressed", suppressed),
    ]
    if result.after_until:
        parts.append(f"{result.after_until} event(s) after --until not run")
    if deploys:
        parts.append(f"{deploys} deploy(s)")
    return "simulated " + "; ".join(parts)


@cli.command()
@journeys_option
@click.option(
    "--events",
    "events_file",
    required=True,
    metavar="FILE.jsonl",
    help="Event log, one JSON event per line ('-' reads stdin).",
)
@click.option(
    "--until",
    callback=_parse_until,
    metavar="TIME",
    help="Stop the virtual clock at this RFC 3339 time (default: run every timer).",
)
@click.option("--explain", is_flag=True, help="Print each customer's timeline of decisions on stderr.")
@click.option(
    "--arrival-order",
    is_flag=True,
    help="Take the file's order as the order the worker read the events in (one input partition), with its "
    "lateness rule (ORCH_MAX_LATENESS): what the worker does with late events.",
)
@click.option(
    "--audit",
    "audit_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write every audit record as JSON lines to this file.",
)
@click.option(
    "--compare",
    "compare_dir",
    type=click.Path(path_type=Path),
    default=None,
    metavar="OTHER_DIR",
    help="Replay the log against a second journeys folder and print what would change.",
)
@click.option(
    "--deploy",
    "deploys",
    multiple=True,
    callback=_parse_deploys,
    metavar="TIME=DIR",
    help="Deploy the journeys of DIR at TIME (RFC 3339) in the replay: runs in flight finish on their version, "
    "later entries take DIR's (repeatable).",
)
def simulate(
    journeys_dir: Path | None, events_file: str, until: int | None, explain: bool, arrival_order: bool,
    audit_file: Path | None, compare_dir: Path | None, deploys: tuple[Deploy, ...],
) -> None:  # fmt: skip
    """Run journeys over a recorded event log with a virtual clock; no Kafka, no Redis.

    Prints the actions that would be sent as JSON lines on stdout, in the order decided.
    A bad input line is reported on stderr with its number and skipped. With --deploy, the journeys of --journeys
    run until the first deploy; with --compare, the diff goes from this replay (its deploys included) to
    OTHER_DIR's.
    """
    if arrival_order and deploys:
        raise click.UsageError("--arrival-order and --deploy cannot be combined")
    settings = read_settings()
    loaded = load_or_exit([journeys_dir or settings.journeys_dir])
    deployed = schedule(loaded, load_deploys(loaded, deploys), lambda dir_, retired: _engine(dir_, settings, retired))
    other = load_or_exit([compare_dir]) if compare_dir else None
    with cyclic_gc_paused():
        log = _read_events(events_file, settings)
        result = _run(_engine(loaded, settings), log, until, settings, explain=explain, deploys=deployed,
                      arrival_order=arrival_order, audit=explain or audit_file is not None)  # fmt: skip
        after = None if other is None else _run(_engine(other, settings), log, until, settings, explain=False,
                                                  arrival_order=arrival_order, audit=False)  # fmt: skip
    if after is None:
        out = sys.stdout.buffer
        for action in result.actions:
            out.write(orjson.dumps(action) + b"\n")
        out.flush()
    else:
        for line in render_diff(diff_actions(result.actions, after.actions)):
            click.echo(line)
    if audit_file is not None:
        with audit_file.open("wb") as handle:
            handle.writelines(orjson.dumps(record) + b"\n" for record in result.audit)
    if explain:
        for line in timelines(result.audit):
            err(line)
    err(_summary(result, log, len(deployed)))


@cli.command()
@journeys_option
@click.option("--events", "events_file", required=True, metavar="FILE.jsonl",
              help="Event log, one JSON event per line ('-' reads stdin).")
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the dashboard to this file: one static HTML page with its charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the KPIs as JSON instead of tables.")
def report(journeys_dir: Path | None, events_file: str, html_file: Path | None, as_json: bool) -> None:
    """Omnichannel KPIs of an event log: journey funnels, lift over the holdout, cross-channel conversion,
    customer lifetime value, engagement, coupons, per day.

    The same counts the worker keeps, from `simulate`'s decisions (docs/kpis.md says how each is defined).
    """
    settings = read_settings()
    from orchestrator.measurement import dashboard
    from orchestrator.measurement.audience import sizes
    from orchestrator.measurement.maps import journey_maps
    from orchestrator.measurement.report import kpis_of, print_report

    loaded = load_or_exit([journeys_dir or settings.journeys_dir])
    log = _read_events(events_file, settings)
    engine = _engine(loaded, settings)
    segments: dict[str, dict[str, int]] = {name: {} for name in sorted(engine.segments)}

    def day_end(at: int, states: Mapping[str, CustomerState]) -> None:
        for name, size in sizes(engine.segments, states, at).items():
            segments[name][format_ms(at - 1)[:10]] = size

    result = _run(engine, log, None, settings, explain=False, on_day_end=day_end if segments else None)
    summary = kpis_of(result).summary(engine.step_order())
    summary["segments"] = segments  # each one's size at the end of each (UTC) day of the log
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print_report(summary)
    if html_file is not None:
        generated = f"{len(log.events)} events from {events_file}"
        maps = journey_maps(engine.latest)
        try:
            html_file.write_text(dashboard.render(summary, generated=generated, maps=maps), encoding="utf-8")
        except OSError as exc:
            err(f"{html_file}: cannot write the dashboard: {exc.strerror or exc}")
            raise SystemExit(EXIT_INPUT) from None
        err(f"dashboard written to {html_file}")


@cli.command()
@journeys_option
@click.option("--events", "events_file", required=True, metavar="FILE.jsonl",
              help="Event log, one JSON event per line ('-' reads stdin).")
@click.option("--sku", default=None, help="Show what this item is bought with, instead of the top pairs.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many rows.")
def affinities(journeys_dir: Path | None, events_file: str, sku: str | None, top: int) -> None:
    """Complementary products learned from the purchases of an event log: the pairs of items most bought together
    (cosine, pairs in 2 or more baskets), or with --sku one item's neighbours, as `recommend` uses them.

    Exit 1 when --sku names an item that is in no basket of the log.
    """
    settings = read_settings()
    from orchestrator.measurement.products import learn, print_affinities

    loaded = load_or_exit([journeys_dir or settings.journeys_dir])
    log = _read_events(events_file, settings)
    snapshot = learn(_engine(loaded, settings), log.events, settings.identity_secret.get_secret_value().encode())
    problem = print_affinities(snapshot, sku, top)
    if problem is not None:
        err(f"{events_file}: {problem}")
        raise SystemExit(EXIT_INPUT)


@cli.command()
@click.argument("name")
@journeys_option
@click.option("--events", "events_file", required=True, metavar="FILE.jsonl",
              help="Event log, one JSON event per line ('-' reads stdin).")
@click.option("--at", callback=_parse_until, metavar="TIME",
              help="The instant, RFC 3339 (default: the time of the log's last event).")
@click.option("--json", "as_json", is_flag=True, help='Print {"segment", "at", "size", "customers"} with every key.')
def audience(name: str, journeys_dir: Path | None, events_file: str, at: int | None, as_json: bool) -> None:
    """The size of segment NAME (of segments.yaml, or `all`) at a time, and its first 20 customer keys in key
    order: the known customers whose first event is before that time, not erased, whose profile then matches.

    Exit 2 when NAME is no segment.
    """
    settings = read_settings()
    from orchestrator.contract.segments import ALL
    from orchestrator.measurement.audience import SHOWN, members

    loaded = load_or_exit([journeys_dir or settings.journeys_dir])
    if name != ALL and name not in loaded.segments:
        known = ", ".join(sorted(loaded.segments)) or "none (segments.yaml beside the journeys defines them)"
        hint = difflib.get_close_matches(name, sorted(loaded.segments), n=1)
        guess = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise click.BadParameter(f"unknown segment {name!r}{guess}; segments: {known}, and all", param_hint="NAME")
    log = _read_events(events_file, settings)
    when = at if at is not None else max((event.ts for event in log.events), default=0)
    engine = _engine(loaded, settings)
    result = _run(engine, log, when - 1, settings, explain=False, audit=False)
    keys = members(engine.segments, result.states, name, when)
    if as_json:
        click.echo(orjson.dumps({"segment": name, "at": format_ms(when), "size": len(keys), "customers": keys}))
        return
    click.echo(f"segment {name} at {format_ms(when)}: {len(keys):,} customer(s)")
    for key in keys[:SHOWN]:
        click.echo(f"  {key}")
    if len(keys) > SHOWN:
        click.echo(f"  … and {len(keys) - SHOWN:,} more (--json lists every one)")


for command in services.COMMANDS:
    cli.add_command(command)


def main() -> None:
    tune_gc()
    try:
        cli.main(prog_name="orchestrator", standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # the last line of defence: never show a user a traceback
        if is_settings_error(exc):  # Settings() read deeper than a command's read_settings()
            raise settings_exit(exc) from None
        if os.environ.get(f"{ENV_PREFIX}DEBUG"):
            raise
        err(f"internal error: {type(exc).__name__}: {exc} (set {ENV_PREFIX}DEBUG=1 for details)")
        raise SystemExit(EXIT_INTERNAL) from None
