"""`orchestrator doctor`: is this machine ready to run the worker and the API?

Each check returns `Check` lines (ok, warning or problem, with how to fix a problem). The checks of Python, the
settings, the journeys and the ports are plain functions; Kafka and Redis (`doctor_services.py`) are asked once
each with short timeouts, so the whole run takes a few seconds even when nothing answers.
"""

from __future__ import annotations

import asyncio
import difflib
import errno
import os
import socket
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import SecretStr, ValidationError

from orchestrator.settings import ENV_PREFIX, MIN_API_TOKEN, Settings

Status = Literal["ok", "warning", "problem"]
MIN_PYTHON = (3, 11)
FIRST_PROBLEMS = 5  # journeys: this many problems, then how many more (`orchestrator validate` lists them all)
SKIPPABLE = ("journeys", "kafka", "redis", "metrics", "api")  # kafka also skips topics and transactions
# ORCH_* variables that are not settings: read by scripts/services, scripts/lib/venv.sh, scripts/demo, the tests
# and the CLI itself; anything else is likely a typo, because Settings ignores unknown variables.
TOOL_VARIABLES = frozenset({
    "ORCH_DEBUG", "ORCH_PYTHON", "ORCH_DEMO_IDLE_SECONDS",
    "ORCH_KAFKA_VERSION", "ORCH_KAFKA_PORT", "ORCH_KAFKA_CONTROLLER_PORT", "ORCH_KAFKA_HEAP", "ORCH_REDIS_PORT",
    "ORCH_SERVICES_DIR", "ORCH_SERVICES_TIMEOUT", "ORCH_SERVICES_STOP_TIMEOUT",
    "ORCH_REDIS_CLUSTER_URL", "ORCH_REDIS_CLUSTER_PORTS", "ORCH_REDIS_CLUSTER_NODE",  # scripts/services cluster
    "ORCH_FUZZ_EXAMPLES", "ORCH_FUZZ_RECORDS", "ORCH_FUZZ_SEED", "ORCH_UPDATE_GOLDEN",
})  # fmt: skip
SHORT_REASONS = {
    "float_parsing": "not a number",
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "bool_parsing": "not a boolean (true or false)",
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`ok      python       3.11.7`, or `problem kafka        ... — fix: ...`"""
        fix = f" — fix: {self.fix}" if self.fix and self.status != "ok" else ""
        return f"{self.status:<8}{self.name:<13}{self.detail}{fix}"


@dataclass(frozen=True, slots=True)
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No problem (warnings are fine)."""
        return all(check.status != "problem" for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}


def variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(map(str, version))
    if version[:2] >= MIN_PYTHON:
        return Check("python", "ok", shown)
    return Check("python", "problem", f"{shown} is too old: the orchestrator needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+",
                 "install Python 3.11 or newer and make the virtualenv from it (ORCH_PYTHON=python3.11 scripts/demo)")


# ------------------------------------------------------------------ settings


def _environ_value(environ: Mapping[str, str], name: str) -> str | None:
    """Settings read variables case-insensitively, so this does too."""
    return next((value for key, value in environ.items() if key.upper() == name), None)


def _shown_value(field: str, raw: str | None) -> str:
    if raw is None:
        return ""
    if Settings.model_fields[field].annotation in (SecretStr, SecretStr | None):
        return "=***"
    return f"={raw if len(raw) <= 60 else raw[:59] + '…'}"


def _bad_value(error: Any, environ: Mapping[str, str]) -> tuple[str | None, Check]:
    """One invalid ORCH_ value as `ORCH_COMMIT_INTERVAL=abc: not a number`, and its field."""
    loc = error["loc"]
    field = str(loc[0]) if loc and str(loc[0]) in Settings.model_fields else None
    message = SHORT_REASONS.get(error["type"]) or error["msg"][0].lower() + error["msg"][1:]
    if field is None:
        return None, Check("settings", "problem", message, "see docs/contract.md for the ORCH_* settings")
    name = variable(field)
    default = Settings.model_fields[field].get_default(call_default_factory=True)
    shown_default = "" if isinstance(default, SecretStr) else f" (default: {default})"
    return field, Check("settings", "problem", f"{name}{_shown_value(field, _environ_value(environ, name))}: {message}",
                        f"correct {name} or unset it{shown_default}")  # fmt: skip


def bad_settings(exc: ValidationError, environ: Mapping[str, str] = os.environ) -> str:
    """Every invalid ORCH_* value of `Settings()`'s error on one line, as the settings check words them."""
    checks = [_bad_value(error, environ)[1] for error in exc.errors(include_url=False)]
    return "; ".join(f"{check.detail} — fix: {check.fix}" for check in checks)


def _unknown_variables(environ: Mapping[str, str], known: Collection[str]) -> list[Check]:
    settings = sorted(variable(field) for field in Settings.model_fields)
    found = []
    for key in sorted(environ):
        name = key.upper()
        if not name.startswith(ENV_PREFIX) or name in settings or name in known or name in TOOL_VARIABLES:
            continue
        hint = difflib.get_close_matches(name, settings, n=1)
        guess = f" (did you mean {hint[0]}?)" if hint else ""
        fix = f"rename it to {hint[0]}" if hint else "unset it; the settings are listed in docs/contract.md"
        found.append(Check("settings", "warning", f"{key} is not a setting, so it is ignored{guess}", fix))
    return found


def _production_problems(settings: Settings) -> list[Check]:
    random = "a long random string of your own (e.g. `openssl rand -hex 32`)"
    found = []
    for name in settings.development_secrets():
        coupon = name == "ORCH_COUPON_SECRET"
        guessed = "coupon codes can be guessed" if coupon else "hashed emails and phones can be guessed"
        also = "" if coupon else ", the same for the worker and the API"
        found.append(Check("settings", "problem", f"{name} is the development default in production: {guessed} "
                           "(the worker and the API refuse to start)", f"set {name} to {random}{also}"))  # fmt: skip
    return found


def _token_problems(settings: Settings) -> list[Check]:
    token = "" if settings.api_token is None else settings.api_token.get_secret_value().strip()
    make = "set ORCH_API_TOKEN to the output of `openssl rand -hex 32` where the API runs"
    if not token:
        return [Check("settings", "warning", "ORCH_API_TOKEN is not set: `orchestrator api` refuses to start",
                      f"{make} (the bearer token of stores and senders)")]  # fmt: skip
    if len(token) < MIN_API_TOKEN:
        return [Check("settings", "problem", f"ORCH_API_TOKEN has {len(token)} characters, fewer than "
                      f"{MIN_API_TOKEN}: `orchestrator api` refuses to start", make)]  # fmt: skip
    return []


def check_settings(
    environ: Mapping[str, str] = os.environ, known: Collection[str] = ()
) -> tuple[list[Check], Settings, frozenset[str]]:
    """The settings as the worker would build them from the environment; an invalid value is one problem line.

    Also returns the settings to check the rest with (an invalid value replaced by its default) and the fields
    whose values were invalid: the checks that need one of them say that they did not run."""
    found: list[Check] = []
    bad: set[str] = set()
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field, check = _bad_value(error, environ)
            found.append(check)
            bad.update([field] if field else [])
        defaults = {field: Settings.model_fields[field].get_default(call_default_factory=True) for field in bad}
        settings = Settings(**defaults)
    from orchestrator.commands.doctor_services import redis_url_problem

    if "redis_url" not in bad and (problem := redis_url_problem(settings.redis_url)):
        found.append(Check("settings", "problem", problem, "set ORCH_REDIS_URL to redis://HOST:PORT/DB"))
        bad.add("redis_url")
    if settings.env == "production":
        found.extend(_production_problems(settings))
    if settings.env == "production" or settings.api_token is not None:
        found.extend(_token_problems(settings))
    found.extend(_unknown_variables(environ, known))
    if not any(check.status == "problem" for check in found):
        count = sum(1 for key in environ if key.upper().startswith(ENV_PREFIX))
        secrets = "own secrets" if settings.env == "production" else "development secrets allowed"
        found.insert(0, Check("settings", "ok", f"{count} ORCH_* variable(s) set, all valid; ORCH_ENV={settings.env} "
                                                f"({secrets})"))  # fmt: skip
    return found, settings, frozenset(bad)


def not_checked(name: str, bad: Collection[str], needs: Iterable[str]) -> Check | None:
    """A check that needs an invalid setting does not run (the settings line already says what is wrong)."""
    invalid = sorted(variable(field) for field in needs if field in bad)
    if not invalid:
        return None
    return Check(name, "warning", f"not checked: {', '.join(invalid)} is not valid (see settings)")


# ------------------------------------------------------------------ journeys


def check_journeys(directory: Path) -> tuple[list[Check], frozenset[str] | None]:
    """What `orchestrator validate` says, in short; and the channels the journeys send on (None when invalid)."""
    from orchestrator.contract.loader import load
    from orchestrator.engine import Engine

    loaded = load([directory])
    if not loaded.ok:
        fix = f"run `orchestrator validate {directory}` for every problem"
        found = [Check("journeys", "problem", str(problem), fix) for problem in loaded.problems[:FIRST_PROBLEMS]]
        if len(loaded.problems) > FIRST_PROBLEMS:
            found.append(Check("journeys", "problem", f"and {len(loaded.problems) - FIRST_PROBLEMS} more problem(s)",
                               fix))  # fmt: skip
        return found, None
    channels = Engine.of(loaded).channels
    names = ", ".join(f"{j.id} v{j.version}" for j in loaded.journeys)
    policy = loaded.policy_file or "built-in defaults"
    detail = (f"{len(loaded.journeys)} journey(s) valid in {directory} ({names}); contact policy: {policy}; "
              f"channels: {', '.join(sorted(channels)) or 'none'}")  # fmt: skip
    return [Check("journeys", "ok", detail)], frozenset(channels)


# ------------------------------------------------------------------ ports


def check_port(name: str, host: str, port: int, field: str) -> Check:
    """Can a server listen on host:port now? (with SO_REUSEADDR, as the API's and the metrics' servers bind)"""
    where, port_var, host_var = f"{host}:{port}", variable(f"{field}_port"), variable(f"{field}_host")
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return Check(name, "problem", f"cannot listen on {where}: {exc.strerror}",
                     f"set {host_var} to an address of this machine")  # fmt: skip
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return Check(name, "problem", f"{where} is in use",
                                 f"stop the process listening on port {port}, or set {port_var} to a free port")
                return Check(name, "problem", f"cannot listen on {where}: {exc.strerror or exc}",
                             f"set {host_var} and {port_var} to an address and port this user may listen on")
    return Check(name, "ok", f"{where} free")


def check_ports(settings: Settings, skip: Collection[str], bad: Collection[str]) -> list[Check]:
    found = []
    if "metrics" not in skip:
        blocked = not_checked("metrics", bad, ["metrics_host", "metrics_port"])
        if blocked:
            found.append(blocked)
        elif settings.metrics_port == 0:
            found.append(Check("metrics", "ok", "not served (ORCH_METRICS_PORT=0)"))
        else:
            found.append(check_port("metrics", settings.metrics_host, settings.metrics_port, "metrics"))
    if "api" not in skip:
        blocked = not_checked("api", bad, ["api_host", "api_port"])
        if blocked:
            found.append(blocked)
        elif settings.api_port == settings.metrics_port:
            found.append(Check("api", "problem", f"ORCH_API_PORT and ORCH_METRICS_PORT are both {settings.api_port}",
                               "give the API and the worker's metrics different ports"))  # fmt: skip
        else:
            found.append(check_port("api", settings.api_host, settings.api_port, "api"))
    if settings.web_enabled and "web_port" not in bad:
        found.append(check_port("web", "0.0.0.0", settings.web_port, "web"))  # faust's web server binds every address
    return found


# ------------------------------------------------------------------ all of them


def skipped(values: Iterable[str]) -> frozenset[str]:
    """`--skip kafka,redis --skip api` as names; ValueError for a name that is not one of `SKIPPABLE`."""
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(SKIPPABLE))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: choose among {', '.join(SKIPPABLE)}")
    return frozenset(names)


def option_variables(group: click.Group) -> set[str]:
    """The ORCH_[<COMMAND>_]<OPTION> variables click reads for the CLI's options (auto_envvar_prefix): not typos."""
    prefix = ENV_PREFIX[:-1]

    def of(command: click.Command, at: str) -> set[str]:
        return {f"{at}_{p.name.upper()}" for p in command.params if isinstance(p, click.Option) and p.name}

    found = of(group, prefix)
    for name, command in group.commands.items():
        found |= of(command, f"{prefix}_{name.replace('-', '_').upper()}")
    return found


def run_checks(
    journeys_dir: Path | None = None, skip: Collection[str] = (), known: Collection[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> Report:  # fmt: skip
    """Every check, in the order printed. `known`: ORCH_* variables the CLI reads itself (not typos)."""
    from orchestrator.commands.doctor_services import check_kafka, check_redis

    checks = [check_python()]
    settings_checks, settings, bad = check_settings(environ, known)
    checks += settings_checks
    channels: frozenset[str] | None = None
    if "journeys" not in skip:
        journey_checks, channels = check_journeys(journeys_dir or settings.journeys_dir)
        checks += journey_checks

    async def services() -> list[Check]:
        kafka = check_kafka(settings, channels, bad) if "kafka" not in skip else None
        redis = check_redis(settings, bad) if "redis" not in skip else None
        results = await asyncio.gather(*(c for c in (kafka, redis) if c is not None))
        return [check for result in results for check in result]

    checks += asyncio.run(services())
    checks += check_ports(settings, skip, bad)
    return Report(checks)


STYLES = {"ok": "green", "warning": "yellow", "problem": "bold red"}


def print_report(report: Report) -> None:
    """One line per check on stdout; the status in colour on a terminal only (rich leaves pipes plain)."""
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)  # soft_wrap: a long line stays one line
    for check in report.checks:
        text = Text(check.line())
        text.stylize(STYLES[check.status], 0, len(check.status))
        console.print(text)
