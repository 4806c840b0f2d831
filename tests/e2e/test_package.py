"""The package as a user gets it: build the sdist and (from it) the wheel, install the wheel into a clean
virtualenv, and run the shipped journeys and example from that install, outside the source tree."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_cli import EXAMPLE, GOLDEN, ROOT, cli

SHIPPED = sorted(p.name for p in (ROOT / "journeys").glob("*.yaml"))


def run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: rc {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.mark.timeout(900)
def test_the_built_wheel_installs_and_runs_the_shipped_journeys(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"journeys/{n}" for n in SHIPPED} | {"examples/events.jsonl", "docs/contract.md", "README.md"} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"orchestrator/shipped/journeys/{n}" for n in SHIPPED} <= names
    assert "orchestrator/shipped/examples/events.jsonl" in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=tmp_path)
    work = tmp_path / "work"  # not the source tree: only the installed package can be imported here
    work.mkdir()
    orchestrator = venv / "bin" / "orchestrator"
    location = run(venv / "bin" / "python", "-c", "import orchestrator; print(orchestrator.__file__)", cwd=work)
    assert location.startswith(str(venv)), location
    assert "wrote 7 files" in run(orchestrator, "init", ".", cwd=work)
    assert sorted(p.name for p in (work / "journeys").glob("*.yaml")) == SHIPPED
    assert "ok: 4 journey(s) valid" in run(orchestrator, "validate", "journeys", cwd=work)
    installed = run(orchestrator, "simulate", "--journeys", "journeys", "--events", "examples/events.jsonl", cwd=work)
    assert installed == cli("simulate", "--events", str(EXAMPLE)).stdout
    assert installed == GOLDEN.read_text()
