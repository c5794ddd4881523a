"""Several processes answering queries: the supervisor and its forked workers.

DESIGN.md "Several workers". The supervisor owns everything that has state:
the backends, the failover controller, the control channel, transfers out,
and the listening sockets, bound once. It forks a *generation* of workers
that inherit the sockets and the built ZoneSet (copy-on-write; ``gc.freeze()``
before the fork keeps the garbage collector from touching, and so copying,
those pages) and only answer queries. Every change of what is served forks a
new generation; once each of its workers says it serves, the old generation
is told to stop (SIGTERM: it stops reading, lets its TCP answers drain and
exits). Both generations read the same sockets, so nothing queued in a socket
is lost in a switch — which would not be true of one SO_REUSEPORT socket per
worker, where closing a socket drops what is queued in it. Serving never waits
for the supervisor: a zone being loaded or a guard at work there costs the
workers nothing but a share of the CPU.

A worker answers from its ZoneSet alone. What needs the supervisor's state
goes there over the worker's *channel*, a SOCK_SEQPACKET socket pair:

* a NOTIFY or a zone-transfer query over UDP, as the datagram: the supervisor
  answers it from its own descriptor of the same socket;
* the same over TCP, as the connection itself (its descriptor, passed with
  SCM_RIGHTS) with the bytes not yet answered: the
  supervisor serves the connection from then on.

A retiring worker stops reading the sockets, says so ("quiet": only then do
control commands that switched a zone answer, so what they report is what is
served), and hands each open TCP connection, once its answers are written,
to the supervisor, which passes it to a worker of the new generation: a
client's connection outlives the switch and gets the new data.

On the same channel a worker says it is ready and sends its counters when
asked (a metrics scrape sums them, see ``ServerCounters``). When the
supervisor dies the channel reads end-of-file and its workers stop.

Per server, shared by the workers: the RRL table (shared memory the
supervisor maps before it forks, seawall/dns/rrl.py), so a limit of 5/s is
5/s whatever the number of workers. Per worker: the TCP connection budgets
(each worker's own, also bounded by its descriptor limit; the supervisor
has its own for the connections handed to it), the sampled query log's
1-in-N count, the answer cache.

A UDP thread hands a datagram over without ever blocking: when the channel
is full the datagram is dropped and counted (``seawall_handoff_dropped``),
like one lost on the network. RRL has counted it before, so a flood of
NOTIFYs from one network never reaches the channel in the first place.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import socket
import sys
import time
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from .budgets import LogLimiter
from .config import Config
from .dns.answers import TableStore
from .dns.responder import Responder
from .dns.rrl import RateLimiter
from .dns.server import DnsServer, UdpProtocol, large_buffer
from .dns.udpthread import UdpThread
from .metrics import QueryStats, ServerCounters
from .privileges import drop_privileges
from .zones.zoneset import ZoneSet

log = logging.getLogger("seawall.workers")

FORK_RETRY = 1.0          # seconds before a generation that failed to start is tried again
READY_TIMEOUT = 30.0      # a new generation not serving by then is killed; the old one stays
COUNTERS_TIMEOUT = 0.5    # a scrape waits this long for the workers' counters
QUIET_TIMEOUT = 2.0       # a retiring worker stops reading within this (else: go on anyway)
RESPAWN_DELAY = 1.0       # a worker that died is replaced after this long, not in a tight loop
CHANNEL_MESSAGE = 1 << 20  # the largest channel message (counters of many zones)
BUILD_WAIT = 20.0         # a version whose answer tables take longer is served cold meanwhile
SWITCH_WAIT = 1.0         # the same for a switch between live, stale and emergency
KEEP_READY_EVERY = 1.0    # how often the supervisor looks for versions to build ahead
IMAGE_WAIT = 3.0          # the first generation waits this long for zone images to be read


class Supervised(Protocol):
    """What the pool needs of the server it forks (seawall/app.py's App)."""

    config: Config
    responder: Responder
    server: DnsServer
    query_stats: QueryStats
    tables: TableStore
    pool: WorkerPool | None

    @property
    def zoneset(self) -> ZoneSet: ...


@dataclass(eq=False)
class Worker:
    """The supervisor's view of one worker process."""

    pid: int
    generation: int
    channel: socket.socket
    ready: asyncio.Future
    counters: ServerCounters = field(default_factory=ServerCounters)
    asked: asyncio.Future | None = None
    retiring: bool = False
    quiet: asyncio.Future | None = None   # done once it reads the sockets no more
    serving: asyncio.Future | None = None  # done once it reads them (after "go")


class WorkerPool:
    """Forks, replaces and retires the workers of one supervisor."""

    def __init__(self, app: Supervised, count: int, grace: float = 1.5) -> None:
        self.app = app
        self.count = count
        self.grace = grace
        self.generation = 0
        self.workers: dict[int, Worker] = {}
        self.retired = ServerCounters()   # what exited workers counted
        self.serving_zoneset = -1        # ZoneSet generation the workers serve
        self.serving_warm = False        # ... with its answer tables built
        self._caught_up: list[tuple[int, asyncio.Future]] = []
        self._wanted = False
        self._follower: asyncio.Task | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._next = 0   # round robin over the serving workers for passed-on connections
        self._building: dict[int, tuple[ZoneSet, asyncio.Future]] = {}   # id(set) -> build
        self._keeper: asyncio.Task | None = None
        self._pending_since: float | None = None   # a change waits for its tables since
        self._changed = asyncio.Event()   # set by refresh(): a newer change to serve
        self._urgent = False              # the change waiting is a switch (see refresh)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """The first generation, serving when this returns.

        It starts at once, warm if the answer tables of what it serves are built
        already, else cold; a warm generation follows once they are (built at
        the supervisor's normal priority: nothing older serves meanwhile)."""
        zoneset = self.app.zoneset
        tables = self.app.tables
        if tables.bodies_for(zoneset) is None:
            building = self._build(zoneset, urgent=True)
            if tables.has_images(zoneset):
                # A restart: reading the images takes a fraction of a second and
                # the first workers start warm; a stale image is built anew.
                await asyncio.wait([building], timeout=IMAGE_WAIT)
        if not await self._new_generation():
            raise RuntimeError("workers did not start; see the log above")
        if not self.serving_warm:
            self._when_built(zoneset)   # then a warm generation
        self._keeper = asyncio.get_running_loop().create_task(self._keep_ready())

    def refresh(self, urgent: bool = False) -> None:
        """The served data changed: a new generation once its answer tables are
        built (build, then swap). Changes that come meanwhile are coalesced.

        ``urgent``: a switch between live, stale and emergency (the backend
        failed, an operator forced a state). Its tables are normally built
        ahead; when they are not (yet), it waits for them ``SWITCH_WAIT``, not
        ``BUILD_WAIT``, then serves cold: the data failover chose, slower,
        rather than the data it switched away from for 20 s more."""
        if self._stopping or self.generation == 0:
            return
        self._urgent = self._urgent or urgent
        self._wanted = True
        self._changed.set()
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while self._wanted and not self._stopping:
            self._wanted = False
            self._changed.clear()
            zoneset = self.app.zoneset
            since = self._pending_since if self._pending_since is not None else time.monotonic()
            wait = SWITCH_WAIT if self._urgent else BUILD_WAIT
            left = max(0.0, since + wait - time.monotonic())
            built = await self._until_built(zoneset, left, urgent=self._urgent)
            if self._stopping:
                return
            if self.app.zoneset is not zoneset and time.monotonic() < since + wait:
                # A newer change came meanwhile (say, a switch to an emergency
                # version built ahead): that one, not this one, is to be served.
                self._wanted = True
                continue
            if not built and self.serving_zoneset == zoneset.generation:
                self._pending_since = None   # served already: not again cold
                self._urgent = False
                if not self.serving_warm:
                    self._when_built(zoneset)   # a warm generation once built
                continue
            self._pending_since = None
            self._urgent = False
            try:
                started = await self._new_generation()
            except OSError as exc:   # the fork itself failed (EAGAIN, ENOMEM)
                log.error("workers: fork failed: %s; the serving generation stays", exc)
                started = False
            if not started:
                # Never give up on serving what was published: try again shortly.
                log.warning("workers: a new generation for zone set %d is tried again in "
                            "%gs", zoneset.generation, FORK_RETRY)
                await asyncio.sleep(FORK_RETRY)
                self._wanted = True
                continue
            if not built:
                log.warning("workers: answer tables not ready after %.0f s: serving zone "
                            "set %d cold until they are", wait, zoneset.generation)
                self._when_built(zoneset)

    # ------------------------------------------------------- answer tables

    def _build(self, zoneset: ZoneSet, urgent: bool = False) -> asyncio.Future:
        """Build ``zoneset``'s answer tables in a background thread (nice 10 unless
        ``urgent``); the tables of its zones' versions built before are reused."""
        running = self._building.get(id(zoneset))
        if running is not None and running[0] is zoneset:
            return running[1]
        tables = self.app.tables
        stopping = lambda: self._stopping  # noqa: E731

        def build() -> int:
            started, before = time.monotonic(), tables.built
            for _ in tables.prepare(zoneset, stop=stopping):
                pass
            built = tables.built - before
            if built:
                log.info("workers: answer tables built: zone set %d, questions=%d in %.1f s",
                         zoneset.generation, built, time.monotonic() - started)
            return built

        loop = asyncio.get_running_loop()
        future = _in_thread(build) if urgent else loop.run_in_executor(None, build)
        self._building[id(zoneset)] = (zoneset, future)
        future.add_done_callback(lambda _: self._building.pop(id(zoneset), None))
        return future

    async def _until_built(self, zoneset: ZoneSet, timeout: float, urgent: bool = False) -> bool:
        """Wait for ``zoneset``'s tables, at most ``timeout`` and no longer than a
        newer change; are they built? (``urgent``: built at normal priority.)"""
        if self.app.tables.bodies_for(zoneset) is not None:
            return True
        future = self._build(zoneset, urgent=urgent)
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait([future, changed], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if future.done() and not future.cancelled() and future.exception() is not None:
            log.error("workers: building the answer tables failed: %r", future.exception())
        return self.app.tables.bodies_for(zoneset) is not None

    def _when_built(self, zoneset: ZoneSet) -> None:
        """Fork a warm generation once the tables of the served (cold) set are built
        (not after a build that failed: that set is served cold until the next change)."""
        def done(future: asyncio.Future) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            if self.app.zoneset is zoneset and not self._stopping:
                self.refresh()
        self._build(zoneset).add_done_callback(done)

    async def _keep_ready(self) -> None:
        """Build ahead the versions a switch may serve (the emergency versions,
        ``TableStore.keep``), so that a switch to them and back forks warm at once."""
        while not self._stopping:
            await asyncio.sleep(KEEP_READY_EVERY)
            if self._wanted or self._building:
                continue   # a change in progress goes first
            zoneset = self.app.zoneset
            tables = self.app.tables
            missing = tables.missing(zoneset)
            if not missing:
                continue

            def build(zones=missing) -> None:
                started = time.monotonic()
                for zone in zones:
                    for _ in tables.prepare_zone(zone, zoneset,
                                                 stop=lambda: self._stopping):
                        pass
                log.info("workers: answer tables built ahead: zones=%s in %.1f s",
                         ",".join(str(z.origin) for z in zones), time.monotonic() - started)

            try:
                await asyncio.get_running_loop().run_in_executor(None, build)
            except Exception:
                log.exception("workers: building answer tables ahead failed")
                await asyncio.sleep(30)

    async def settled(self, timeout: float = READY_TIMEOUT) -> bool:
        """Wait until the workers serve the supervisor's current ZoneSet (a control
        command that switched a zone answers once the switch is served)."""
        target = self.app.zoneset.generation
        if self.serving_zoneset >= target or self.generation == 0:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._caught_up.append((target, waiter))
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _new_generation(self) -> bool:
        generation = self.generation + 1
        served = self.app.zoneset
        zoneset = served.generation
        started = time.monotonic()
        tables = self.app.tables
        bodies = tables.bodies_for(served)
        warm = bodies is not None
        # The workers inherit these tables with the fork (shared, copy-on-write).
        self.app.responder.fast.bodies = bodies if bodies is not None else tables.partial(served)
        tables.retain(served, *(zs for zs, _ in self._building.values()))
        new = self._fork_many(generation, self.count)
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready for w in new)), READY_TIMEOUT)
        except (asyncio.TimeoutError, EOFError, ConnectionError) as exc:
            log.error("workers: generation %d did not start (%s); generation %d keeps serving",
                      generation, type(exc).__name__, self.generation)
            for worker in new:
                worker.retiring = True
                _kill(worker.pid, signal.SIGKILL)
            return False
        old = [w for w in self.workers.values() if w.generation < generation]
        self.generation = generation
        for worker in old:
            worker.retiring = True
            _kill(worker.pid, signal.SIGTERM)
        # The new generation starts reading once the old one has stopped: a
        # client that saw the new data never gets the old again. Meanwhile
        # queries wait in the socket buffers, they are not lost.
        quiet = [w.quiet for w in old if w.quiet is not None and not w.quiet.done()]
        if quiet:
            await asyncio.wait(quiet, timeout=QUIET_TIMEOUT)
        for worker in new:
            self._send(worker, ("go",))
        serving = [w.serving for w in new if w.serving is not None]
        await asyncio.wait(serving, timeout=QUIET_TIMEOUT)
        self.serving_zoneset = zoneset
        self.serving_warm = warm
        waiting, self._caught_up = self._caught_up, []
        for target, waiter in waiting:
            if target > zoneset:
                self._caught_up.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(True)
        log.info("workers: generation=%d serving pids=%s in %.3f s (zone set %d, %s)",
                 generation, ",".join(str(w.pid) for w in new), time.monotonic() - started,
                 zoneset, "warm" if warm else "cold")
        return True

    def _fork_many(self, generation: int, count: int) -> list[Worker]:
        # Frozen, the objects built so far (the ZoneSet above all) are never
        # scanned by a worker's collector, so their pages stay shared.
        gc.freeze()
        forked: list[Worker] = []
        try:
            for _ in range(count):
                forked.append(self._fork(generation))
            return forked
        except OSError:
            for worker in forked:   # half a generation never serves: stop it
                worker.retiring = True
                _kill(worker.pid, signal.SIGKILL)
            raise
        finally:
            gc.unfreeze()

    def _fork(self, generation: int) -> Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            large_buffer(end, CHANNEL_MESSAGE * 2, send=True)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:   # the worker: never returns into the supervisor's code
            code = 1
            try:
                code = run_worker(self.app, theirs, self.grace)
            except BaseException:
                log.exception("worker failed")
            finally:
                sys.stderr.flush()
                os._exit(code)
        theirs.close()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        worker = Worker(pid, generation, ours, loop.create_future(), quiet=loop.create_future(),
                        serving=loop.create_future())
        self.workers[pid] = worker
        loop.add_reader(ours.fileno(), self._readable, worker)
        return worker

    async def stop(self) -> None:
        """Every worker told to stop; wait for them (their TCP answers drain)."""
        self._stopping = True
        for task in (self._follower, self._keeper):
            if task is not None:
                task.cancel()
        for worker in self.workers.values():
            worker.retiring = True
            _kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 3.0
        while self.workers and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for worker in list(self.workers.values()):
            log.warning("workers: pid %d did not stop in time: killed", worker.pid)
            _kill(worker.pid, signal.SIGKILL)
            self._gone(worker)

    # ------------------------------------------------------------- channel

    def _readable(self, worker: Worker) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(worker.channel, CHANNEL_MESSAGE, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self._gone(worker)
            return
        try:
            message = pickle.loads(data)
            self._dispatch(worker, message, fds)
        except Exception:
            log.exception("workers: bad message from pid %d", worker.pid)
            for fd in fds:
                os.close(fd)

    def _dispatch(self, worker: Worker, message: tuple, fds: list[int]) -> None:
        kind = message[0]
        if kind == "ready":
            if not worker.ready.done():
                worker.ready.set_result(True)
        elif kind == "counters":
            worker.counters = message[1]
            if worker.asked is not None and not worker.asked.done():
                worker.asked.set_result(True)
        elif kind == "udp":
            _, listener, wire, addr = message
            self.app.server.answer_datagram(listener, wire, addr)
        elif kind == "serving":
            if worker.serving is not None and not worker.serving.done():
                worker.serving.set_result(True)
        elif kind == "quiet":
            if worker.quiet is not None and not worker.quiet.done():
                worker.quiet.set_result(True)
        elif kind == "tcp" and fds:
            _, pending, purpose = message
            if purpose == "retire" and self._pass_on(fds[0], pending):
                return
            self.app.server.adopt(fds[0], pending)
        else:
            for fd in fds:
                os.close(fd)
            log.warning("workers: unknown message %r from pid %d", kind, worker.pid)

    def _send(self, worker: Worker, message: tuple) -> None:
        try:
            worker.channel.send(pickle.dumps(message))
        except OSError as exc:
            log.warning("workers: message %s to pid %d lost: %s", message[0], worker.pid, exc)

    def _pass_on(self, fd: int, pending: bytes) -> bool:
        """A retiring worker's TCP connection to a worker of the serving generation."""
        serving = [w for w in self.workers.values()
                   if w.generation == self.generation and not w.retiring and w.ready.done()]
        if not serving:
            return False
        self._next = (self._next + 1) % len(serving)
        try:
            socket.send_fds(serving[self._next].channel, [pickle.dumps(("adopt", pending))],
                            [fd])
        except OSError:
            return False
        os.close(fd)   # the worker has its own descriptor now
        return True

    def _gone(self, worker: Worker) -> None:
        """The worker's channel closed: it exited (or is about to)."""
        if self.workers.pop(worker.pid, None) is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.channel.fileno())
        worker.channel.close()
        self.retired.add(worker.counters)
        if not worker.ready.done():
            worker.ready.set_exception(EOFError(f"worker {worker.pid} exited before serving"))
            worker.ready.exception()   # looked at: no "never retrieved" warning
        for waiter in (worker.quiet, worker.serving):
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        crashed = not (worker.retiring or self._stopping)
        self._reap(worker, crashed, tries=100)
        if crashed:
            loop.call_later(RESPAWN_DELAY, self._replace, worker.generation)

    def _reap(self, worker: Worker, crashed: bool, tries: int) -> None:
        """Collect the exited worker; its channel closes a moment before it is gone."""
        try:
            done, status = os.waitpid(worker.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            if tries > 0:
                asyncio.get_running_loop().call_later(0.02, self._reap, worker, crashed,
                                                       tries - 1)
            return
        if crashed:
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit {os.WEXITSTATUS(status)}")
            log.error("workers: pid %d of generation %d died (%s); replacing it",
                      worker.pid, worker.generation, how)

    def _replace(self, generation: int) -> None:
        if self._stopping or generation != self.generation:
            return   # stopping, or a newer generation serves already
        task = asyncio.get_running_loop().create_task(self._start_replacement(generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_replacement(self, generation: int) -> None:
        """One worker into the serving generation, in place of one that died."""
        worker = self._fork_many(generation, 1)[0]
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), READY_TIMEOUT)
        except (asyncio.TimeoutError, EOFError):
            log.error("workers: the replacement pid %d did not start", worker.pid)
            _kill(worker.pid, signal.SIGKILL)
            return
        self._send(worker, ("go",))

    # ------------------------------------------------------------ counters

    async def gather_counters(self) -> None:
        """Ask every serving worker for its counters; wait briefly for the answers."""
        loop = asyncio.get_running_loop()
        waiting = []
        for worker in list(self.workers.values()):
            worker.asked = loop.create_future()
            try:
                worker.channel.send(pickle.dumps(("counters?",)))
            except OSError:
                continue
            waiting.append(worker.asked)
        if waiting:
            await asyncio.wait(waiting, timeout=COUNTERS_TIMEOUT)

    def counters(self) -> ServerCounters:
        """What every worker counted, those gone included (as last heard of)."""
        total = ServerCounters()
        total.add(self.retired)
        for worker in self.workers.values():
            total.add(worker.counters)
        return total


# ---------------------------------------------------------------- the worker

def run_worker(app: Supervised, channel: socket.socket, grace: float) -> int:
    """The body of a worker process (after fork); its exit code."""
    app.pool = None           # the supervisor's; a worker has none of its own
    keep = {0, 1, 2, channel.fileno()}
    for udp, tcp in app.server.sockets:
        keep |= {udp.fileno(), tcp.fileno()}
    _release_inherited(keep)
    drop_privileges(app.config.user, app.config.group)   # the first generation starts as root
    # The supervisor handles ^C and SIGHUP for the whole server.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The supervisor's loop had its wakeup descriptor set; ours sets its own
    # and must not put back one that now points at /dev/null.
    signal.set_wakeup_fd(-1)
    try:
        import uvloop  # the faster event loop, when installed (the "speed" extra)
    except ImportError:
        asyncio.run(_serve(app, channel, grace))
    else:
        uvloop.run(_serve(app, channel, grace))
    return 0


async def _serve(app: Supervised, channel: socket.socket, grace: float) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    responder, server = app.responder, app.server
    link = _Link(channel, stopping)
    link.server = server
    # What needs the supervisor's state goes there; the rest is answered here.
    responder.hand_off = True
    responder.transfer_handler = None
    responder.notify_handler = None
    server.hand_off_datagram = link.hand_off_datagram
    server.hand_off_connection = link.hand_off_connection
    # Counting starts at zero in each worker; the supervisor sums.
    app.query_stats.counts = {}
    app.query_stats.zone_counts = {}
    server.refused_connections = 0
    # UDP from a thread per socket, each with a Responder of its own; TCP and
    # the channel on this loop (seawall/dns/udpthread.py says why).
    udp = [_udp_thread(app, index, sock, link)
           for index, (sock, _) in enumerate(server.sockets)]
    link.counters = lambda: _counters(app, udp, link)
    loop.add_reader(channel.fileno(), link.readable)
    link.send(("ready",))
    # Reading starts when the supervisor says: once the previous generation stopped.
    waits = [loop.create_task(link.go.wait()), loop.create_task(stopping.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    if not stopping.is_set():
        await server.start(udp=False)
        for thread in udp:
            thread.start()
        link.send(("serving",))
    await stopping.wait()
    for thread in udp:
        thread.stop()
    server.stop_listening()
    link.send(("quiet",))
    # Open connections go on with a newer worker (or the supervisor), not closed.
    await server.hand_over_connections(grace)
    await server.stop(grace=0)
    link.send(("counters", link.counters()))


def _udp_thread(app: Supervised, index: int, sock: socket.socket, link: _Link) -> UdpThread:
    base = app.responder
    responder = Responder(base.zoneset, base.settings)
    responder.fast.bodies = base.fast.bodies   # built by the supervisor, if it did yet
    responder.hand_off = True
    responder.tsig_handler = base.tsig_handler
    # Every thread of every worker counts in the supervisor's table: limits per server.
    shared = app.server.rate_limiter
    limiter = RateLimiter(app.config.rrl, table=shared.table) if shared is not None else None
    stats = None
    if app.server.stats is not None:
        stats = QueryStats(sample_every=app.server.stats.sample_every)
        stats.zones = app.server.stats.zones
    protocol = UdpProtocol(responder, limiter, stats, index, link.hand_off_datagram)
    return UdpThread(sock, protocol)


def _counters(app: Supervised, threads: list[UdpThread], link: _Link) -> ServerCounters:
    """This worker's counters: its event loop's and each UDP thread's."""
    total = ServerCounters.of_server(app.query_stats, app.server)
    for thread in threads:
        total.add(ServerCounters.of(thread.protocol.stats, thread.protocol.rate_limiter))
    total.handoff_dropped += link.handoff_dropped
    return total


class _Link:
    """A worker's end of its channel to the supervisor."""

    def __init__(self, channel: socket.socket, stopping: asyncio.Event) -> None:
        channel.settimeout(1.0)   # a send never blocks the worker for longer
        self.channel = channel
        # The UDP threads' way in: the same channel, never waiting (a full channel
        # drops the datagram, counted), so a flood cannot stall a UDP thread.
        self.datagrams = socket.socket(fileno=os.dup(channel.fileno()))
        self.datagrams.setblocking(False)
        self.handoff_dropped = 0
        self._log = LogLimiter(log)
        self.stopping = stopping
        self.counters: Callable[[], ServerCounters] = ServerCounters
        self.server: Any = None   # the worker's DnsServer, for connections passed on
        self.go = asyncio.Event()  # the supervisor's word to start reading the sockets

    def send(self, message: tuple, fds: list[int] | None = None) -> None:
        try:
            if fds:
                socket.send_fds(self.channel, [pickle.dumps(message)], fds)
            else:
                self.channel.send(pickle.dumps(message))
        except OSError as exc:
            log.warning("worker: message to the supervisor lost: %s: %s", message[0], exc)

    def readable(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.channel, CHANNEL_MESSAGE, 1)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            data, fds = b"", []
        if not data:   # the supervisor is gone: stop serving
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            self.stopping.set()
            return
        message = pickle.loads(data)
        if message[0] == "counters?":
            self.send(("counters", self.counters()))
        elif message[0] == "go":
            self.go.set()
        elif message[0] == "adopt" and fds:
            # A connection of a retired worker: served here from now on.
            self.server.adopt(fds[0], message[1])
        else:
            for fd in fds:
                os.close(fd)

    def hand_off_datagram(self, listener: int, wire: bytes, addr: tuple) -> None:
        try:
            self.datagrams.send(pickle.dumps(("udp", listener, wire, addr)))
        except OSError as exc:   # full (BlockingIOError) or gone: UDP may lose it
            self.handoff_dropped += 1
            self._log.warning("handoff", "worker: datagram for the supervisor dropped: "
                              "client=%s reason=%s dropped=%d", addr[0], exc,
                              self.handoff_dropped)

    def hand_off_connection(self, fd: int, pending: bytes, purpose: str) -> None:
        self.send(("tcp", pending, purpose), [fd])


# ------------------------------------------------------------------ helpers

def _in_thread(fn: Callable[[], Any]) -> asyncio.Future:
    """Run ``fn`` in a thread of its own at the normal priority; its future."""
    loop = asyncio.get_running_loop()
    done: Future = Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:   # handed to whoever awaits
            done.set_exception(exc)

    threading.Thread(target=run, name="answer-tables", daemon=True).start()
    return asyncio.wrap_future(done, loop=loop)


def _release_inherited(keep: set[int]) -> None:
    """Let go of every descriptor the supervisor had open but ``keep``.

    A worker holding a copy of, say, a control client's connection would keep it
    open after the supervisor closed it. Each one is pointed at /dev/null rather
    than closed: objects of the supervisor's that still own those numbers may
    close them some day, and must not close what the worker opened since."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd in keep or fd == null:
                continue
            try:
                os.dup2(null, fd)
            except OSError:
                pass   # the descriptor of the listing itself, already closed
    except FileNotFoundError:
        pass   # no /proc: the copies stay (they are only ever closed late)
    finally:
        os.close(null)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
