"""What one zone file may make the reader do: bounded work per zone load.

A master file is small, but two of its directives multiply: ``$GENERATE``
(BIND's extension) writes a record per step with padding as wide as the
file asks, and ``$INCLUDE`` (RFC 1035 §5.1) can name several files that
each name several more. A few hundred bytes could ask for gigabytes or for
a hundred million file reads, and one such zone would hold up every other
zone of its directory. So each zone load gets a budget; the first limit it
passes ends the load of that zone alone, with a ``file:line`` problem that
names the limit (the zone is then not served, and its other versions keep
serving as for any broken file). The other zones of the directory load as
usual.

The limits, per zone load (module constants, read when a load starts):

* ``MAX_GENERATE_WIDTH`` = 255: the widest ``${offset,width,base}`` field
  (a label is at most 63 octets, a name 255: RFC 1035 §2.3.4).
* ``MAX_GENERATE_RECORDS`` = 65,536: records made by all ``$GENERATE``
  lines of the zone together (a whole /16 of reverse names).
* ``MAX_GENERATE_BYTES`` = 16 MiB: text made by all ``$GENERATE`` lines.
* ``MAX_INCLUDE_READS`` = 256: files opened by ``$INCLUDE`` in the zone, at
  any depth (the depth itself is at most ``MAX_INCLUDE_DEPTH`` = 8).
* ``LOAD_SECONDS`` = 30: reading, checking and building the zone. Far more
  than a plain million-record file needs, and half of the files backend's
  60 s for a whole look at the directory, so one slow file cannot use it up.

Example::

    budget = LoadBudget.start()          # the defaults above
    budget.spend_include()               # BudgetExceeded past MAX_INCLUDE_READS
    budget.check_time()                  # BudgetExceeded past LOAD_SECONDS
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import SeawallError

MAX_GENERATE_WIDTH = 255
MAX_GENERATE_RECORDS = 65536
MAX_GENERATE_BYTES = 16 * 1024 * 1024
MAX_INCLUDE_READS = 256
MAX_INCLUDE_DEPTH = 8
LOAD_SECONDS = 30.0


class BudgetExceeded(SeawallError):
    """A zone file asked for more work than one zone load may do; the zone is not loaded."""


@dataclass
class LoadBudget:
    """The limits of one zone load and what it has used of them so far.

    The limits default to the module's constants as they are when the
    budget is made; the clock starts then too.
    """

    seconds: float = field(default_factory=lambda: LOAD_SECONDS)
    include_reads: int = field(default_factory=lambda: MAX_INCLUDE_READS)
    generate_records: int = field(default_factory=lambda: MAX_GENERATE_RECORDS)
    generate_bytes: int = field(default_factory=lambda: MAX_GENERATE_BYTES)
    generate_width: int = field(default_factory=lambda: MAX_GENERATE_WIDTH)
    deadline: float = field(init=False)
    includes_read: int = field(default=0, init=False)
    records_generated: int = field(default=0, init=False)
    bytes_generated: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @classmethod
    def start(cls, **limits: float) -> LoadBudget:
        """A budget with the module's current limits (or those given), its clock started."""
        return cls(**limits)  # type: ignore[arg-type]

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"loading this zone took longer than {self.seconds:g} s "
                                 "(the time one zone load may take); the zone is not loaded")

    def spend_include(self) -> None:
        self.includes_read += 1
        if self.includes_read > self.include_reads:
            raise BudgetExceeded(f"$INCLUDE: more than {self.include_reads} files read for "
                                 "this zone (the reads one zone load may do); the zone is "
                                 "not loaded")

    def spend_generated(self, records: int, size: int) -> None:
        """Reserve ``records`` records of ``size`` bytes of text in all, before making them."""
        if self.records_generated + records > self.generate_records:
            raise BudgetExceeded(f"$GENERATE: more than {self.generate_records} records "
                                 "generated in this zone (the records one zone load may "
                                 "generate); the zone is not loaded")
        if self.bytes_generated + size > self.generate_bytes:
            raise BudgetExceeded(f"$GENERATE: more than {self.generate_bytes} bytes of text "
                                 "generated in this zone (the text one zone load may "
                                 "generate); the zone is not loaded")
        self.records_generated += records
        self.bytes_generated += size
