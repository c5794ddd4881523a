"""The state of one checked target: up or down, with rise/fall counts and a hold-down.

A target is an address and the check run against it; RRsets that use the
same address with the same check share one target (checked once). Its state
changes only after ``fall`` consecutive failed checks (up to down) or
``rise`` consecutive good ones (down to up), and at most once per
``hold_down``: a change due inside the window waits for its end and
happens then only if the counts still call for it (flap damping).
"""

from __future__ import annotations

from .declaration import Check


class TargetState:
    """Up or down, since when and why; fed one check result at a time."""

    def __init__(self, address: str, check: Check, *, up: bool, now: float) -> None:
        self.address = address
        self.check = check
        self.up = up
        self.since = now                  # monotonic time of the last change (or the start)
        self.why = "assumed up before its first check" if up \
            else "assumed down before its first check"
        self.oks = 0                      # consecutive good checks
        self.fails = 0                    # consecutive failed checks
        self.checks = 0                   # checks done since start
        self.changes = 0                  # changes of state since start
        self.last_change: float | None = None
        self.last_result_at: float | None = None
        self.last_error: str | None = None
        self.busy_since = now             # when the checker last started or finished work
        self.pending: bool | None = None  # a change waiting for the hold-down window
        self.stalled = False

    @property
    def key(self) -> tuple[str, Check]:
        return (self.address, self.check)

    def describe(self) -> str:
        return f"{self.address} ({self.check.describe()})"

    def record(self, ok: bool, why: str, now: float) -> bool:
        """One check result; True when the state changed."""
        self.checks += 1
        self.last_result_at = self.busy_since = now
        if ok:
            self.oks += 1
            self.fails = 0
        else:
            self.fails += 1
            self.oks = 0
            self.last_error = why
        return self.settle(now)

    def settle(self, now: float) -> bool:
        """Change state if the counts call for it and the hold-down allows; True if changed."""
        check = self.check
        if self.up and self.fails >= check.fall:
            want = False
            why = f"{self.fails} failed checks in a row (fall={check.fall}): {self.last_error}"
        elif not self.up and self.oks >= check.rise:
            want = True
            why = f"{self.oks} good checks in a row (rise={check.rise})"
        else:
            self.pending = None
            return False
        if (check.hold_down and self.last_change is not None
                and now - self.last_change < check.hold_down):
            self.pending = want
            return False
        self.up = want
        self.why = why
        self.since = self.last_change = now
        self.changes += 1
        self.pending = None
        return True

    def stall_deadline(self, stall_after: float) -> float:
        """When the checker of this target counts as stalled if it has done nothing since."""
        return self.busy_since + self.check.interval + self.check.timeout + stall_after
