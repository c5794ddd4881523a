"""Health-checked answers: when a site behind a name dies, answer with the ones standing.

Modules, one job each:

* :mod:`.declaration` — reads ``NAME.health.conf`` beside a zone file: the
  health-checked RRsets, their pools (octoDNS's ``dynamic`` schema) and checks.
* :mod:`.checks` — TCP connect, HTTP(S) status and body match, DNS query.
* :mod:`.target` — one target's state: rise/fall counts and a hold-down.
* :mod:`.answers` — the controller's ``answer_filter``: the zone as served.
* :mod:`.faults` — drill faults: a target's checks made to fail, checkers hung.
* :mod:`.service` — runs the checks once, in the supervisor; status, drills.

Checks never run per query nor per worker: the supervisor checks, the
controller re-publishes a derived zone when an answer changes, and workers
serve it from prebuilt answer tables like any other zone version.
"""

from .answers import AnswerFilter
from .declaration import HealthDeclarationError, read_side_file
from .service import HealthService

__all__ = ["AnswerFilter", "HealthDeclarationError", "HealthService", "read_side_file"]
