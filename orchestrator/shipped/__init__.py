"""The journeys and example log that ship with the package (`orchestrator init` copies them out).

In a wheel they sit here, as `journeys/` and `examples/` (pyproject's package-dir maps the top-level folders in);
an editable install from a checkout reads the checkout's top-level folders, which are the same files.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Literal

Part = Literal["journeys", "examples"]


def shipped(part: Part) -> Traversable:
    """The folder of shipped files `part`, in the installed package or else in the source checkout."""
    packaged = resources.files(__name__).joinpath(part)
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / part
