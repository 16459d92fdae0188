"""What one run of a real-MicroPython runtime (the WebAssembly VM, the unix port) gives back, the
errors of the runtime itself, and how a board process turns a run into its exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hostemu import context


@dataclass(frozen=True)
class HeapReport:
    """One heap report: `alloc`/`free` are gc.mem_alloc()/gc.mem_free() at that point."""

    label: str
    alloc: int
    free: int
    collected: bool  # True: taken right after gc.collect(), i.e. the live heap


Report = TypeVar("Report", bound=HeapReport)


@dataclass
class RunResult(Generic[Report]):
    status: int  # 0 ok, 1 uncaught exception, n for sys.exit(n), VMStop's status for a reset
    traceback: str | None
    output: str
    heap: list[Report] = field(default_factory=list)
    stop_reason: str | None = None  # "machine.reset()", "watchdog", ... when a peripheral ended the run

    @property
    def ok(self) -> bool:
        return self.status == 0

    def heap_at(self, label: str) -> Report:
        """The last report with this label ("baseline", "after main.py", ...)."""
        for report in reversed(self.heap):
            if report.label == label:
                return report
        raise KeyError(label)

    @property
    def baseline(self) -> Report:
        """Live heap with the runtime's own modules imported, before any device code ran."""
        return self.heap_at("baseline")

    def above_baseline(self, label: str) -> int:
        return self.heap_at(label).alloc - self.baseline.alloc


class RuntimeFailure(Exception):
    """The runtime itself failed (interpreter missing, bridge broken): not device code."""


class RuntimeTimeout(RuntimeFailure):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def show(text: str) -> None:
    """A board process's console: what the board prints, as it prints it."""
    sys.stdout.write(text)
    sys.stdout.flush()


def board_exit_code(boot: Callable[[], RunResult], runtime_name: str) -> int:
    """Run one board life; the board process's exit code (`hostemu.context.EXIT_*`) for the
    supervisor, which restarts the board after a reset with the reset cause."""
    try:
        result = boot()
    except RuntimeTimeout:
        return context.EXIT_RETURNED
    except RuntimeFailure as exc:
        print(f"hostemu: {runtime_name} failed: {exc}", file=sys.stderr)
        return 2
    if result.stop_reason is not None:  # machine.reset(), deepsleep(), the watchdog
        return result.status
    # main.py returned or raised: a board drops to its REPL; here the run ends.
    return context.EXIT_RETURNED if result.status == 0 else context.EXIT_EXCEPTION
