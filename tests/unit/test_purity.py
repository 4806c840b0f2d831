"""The engine is pure: no I/O, no clock, no randomness, no streaming libraries."""

import ast
from pathlib import Path

import orchestrator.engine

FORBIDDEN_MODULES = {"faust", "aiokafka", "redis", "socket", "asyncio", "random", "time", "os", "subprocess",
                     "http", "urllib", "requests", "aiohttp", "threading", "pathlib", "io"}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "print", "input"}


def engine_sources() -> list[Path]:
    return sorted(Path(orchestrator.engine.__file__).parent.glob("*.py"))


def test_engine_imports_nothing_impure() -> None:
    for source in engine_sources():
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{source.name} imports {name}"


def test_engine_reads_no_clock_and_does_no_io() -> None:
    for source in engine_sources():
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name not in FORBIDDEN_CALLS, f"{source.name}:{node.lineno} calls {name}()"


def test_engine_keeps_no_module_level_mutable_state() -> None:
    for source in engine_sources():
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.List | ast.Dict | ast.Set):
                raise AssertionError(f"{source.name}:{node.lineno} keeps mutable module state")
