"""What the `orchestrator` commands share: exit codes, error lines on stderr, loading journeys or exiting.

Exit codes: 0 fine, 1 the input is wrong (journeys, events), 2 the command line or an ORCH_* setting is wrong,
69 a service (Kafka, Redis) cannot be reached, 70 an internal error (set ORCH_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TypeGuard

import click
from pydantic import ValidationError

from orchestrator.contract.loader import Loaded, load
from orchestrator.settings import Settings

EXIT_INPUT = 1
EXIT_USAGE = 2  # as click's own usage errors: a bad option, or a bad ORCH_* value
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a service (Redis, Kafka) cannot be reached
EXIT_INTERNAL = 70
KIND = re.compile(r"[a-z0-9_]+")


def err(line: str = "") -> None:
    click.echo(line, err=True)


def is_settings_error(exc: BaseException) -> TypeGuard[ValidationError]:
    return isinstance(exc, ValidationError) and exc.title == Settings.__name__


def settings_exit(exc: ValidationError) -> SystemExit:
    """One line naming each bad ORCH_* variable and what is wrong with it; exit 2."""
    from orchestrator.commands.doctor import bad_settings

    err(bad_settings(exc))
    return SystemExit(EXIT_USAGE)


def read_settings() -> Settings:
    """The settings from ORCH_* variables, or one line naming the bad one and exit 2 (never pydantic's dump)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise settings_exit(exc) from None


def service_settings() -> Settings:
    """`read_settings` for the commands that serve (worker, API): in production the development secrets, which anyone
    who reads this repository knows, refuse the start (one line naming them, exit 2); in development they are
    allowed, with a warning when Kafka is not on this machine (a shared cluster is no place for them)."""
    settings = read_settings()
    found = " and ".join(settings.development_secrets())
    if found and settings.env == "production":
        err(f"refusing to start: {found} at the development default with ORCH_ENV=production (coupon codes could "
            f"be predicted, hashed emails guessed): set a long random value of your own (`openssl rand -hex 32`)")
        raise SystemExit(EXIT_USAGE)
    if found and not settings.kafka_on_loopback():
        err(f"warning: {found} at the development default with Kafka at {settings.kafka_bootstrap_servers}, not on "
            f"this machine: set your own (`openssl rand -hex 32`) and ORCH_ENV=production")  # fmt: skip
    return settings


def load_or_exit(paths: Iterable[Path]) -> Loaded:
    loaded = load(list(paths))
    for problem in loaded.problems:
        err(str(problem))
    if not loaded.ok:
        err(f"{len(loaded.problems)} problem(s): fix them and run `orchestrator validate` again")
        raise SystemExit(EXIT_INPUT)
    return loaded


journeys_option = click.option(
    "--journeys", "journeys_dir", type=click.Path(path_type=Path), default=None,
    help="Journeys folder (default: $ORCH_JOURNEYS_DIR or journeys/).",
)  # fmt: skip


