"""The pure core: (customer state, event or timer, now) -> (new state, actions, audit records, timers).

Nothing in this package performs I/O, reads a clock, draws random numbers or keeps global state;
`tests/unit/test_purity.py` checks its imports.
"""

from orchestrator.engine.outcome import Outcome
from orchestrator.engine.runner import Engine
from orchestrator.engine.state import CustomerState, Timer

__all__ = ("CustomerState", "Engine", "Outcome", "Timer")
