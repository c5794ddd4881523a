"""Configuration: one YAML file loaded once into frozen, typed objects.

Every key has a default, so an empty file (or none) is a working server
serving ``zones/`` on 127.0.0.1:5353. Unknown keys and values of the wrong
type are errors naming their line. Example::

    listen: ["127.0.0.1:5353", "[::1]:5353"]
    zones: zones                 # live zone files (a git checkout)
    emergency_dir: zones/emergency
    state_dir: .seawall
    udp_payload: 1232            # our EDNS(0) UDP payload size
    tcp_idle_timeout: 10s
    identity: {version: null, hostname: null, id_server: null}
    backends:                    # where live zone data comes from (default: files on `zones`)
      - type: files              # a directory of zone files (a git checkout)
        path: zones
      - type: axfr               # a hidden primary, pulled with SOA/IXFR/AXFR, NOTIFY-driven
        primary: "127.0.0.1:5300"
        zones: [example.net]
        tsig: {name: xfr-key, algorithm: hmac-sha256, secret: "base64..."}
        notify_from: []          # more addresses allowed to NOTIFY (the primary always is)
        refresh: null            # override the SOA REFRESH/RETRY timers (e.g. 30s)
        ixfr: true               # ask for IXFR (RFC 1995), AXFR when it is refused
        transfer_timeout: 30s
    tcp_max_connections: 1000    # TCP caps (RFC 7766 §6.2.2): all clients (and ulimit -n),
    tcp_max_per_client: 64       # ... per client prefix (/32 and /64 by default)
    rrl:                         # response rate limiting on UDP, per client /24 or /56
      enabled: true
      answers_per_second: 1000   # per network and second; 0: no limit for this kind
      nxdomains_per_second: 200
      errors_per_second: 100
      slip: 2                    # every 2nd response over the limit goes out truncated
      exempt: ["127.0.0.0/8", "::1/128"]   # never limited (local checks, drills, benches)
    failover:
      probe_interval: 1s         # health probe of every zone's backend
      probe_timeout: 1s
      fail_after: 3              # consecutive failures: live -> stale/emergency
      recover_after: 5           # consecutive successes: back to live
      stale_for: expire          # serve the last good data this long (expire: the SOA EXPIRE)
      startup_wait: 5s           # wait this long for a remote backend at start-up
      max_delete_ratio: 0.3      # the guard: share of RRsets one version may delete
      max_change_ratio: 0.5      # ... and change (added + deleted + modified)
      emergency_ttl_max: 300     # TTL cap in emergency state (null: none)
      stale_ttl_max: null        # TTL cap in stale state (null: none)
      require_emergency: true    # a served zone without an emergency file is an error
      protect: ["www.example.com A"]   # RRsets a version may never remove or empty
      signature_margin: 1h       # leave signed data this long before its first RRSIG expires
      flap_half_life: 10m        # flap damping: how fast a zone's bounces are forgiven
      remove_after: 1h           # a zone file absent this long is a removed zone
    control:                     # what `seawall failover` and `seawall reload` talk to
      enabled: true              # the Unix socket state_dir/control.sock (mode 0600)
      listen: null               # e.g. "127.0.0.1:5380": also TCP on loopback, HMAC-signed
      secret_file: null          # the shared secret of the TCP listener
    transfers:                   # Seawall as a primary for its own secondaries (AXFR/IXFR, NOTIFY)
      allow:                     # who may transfer: address prefixes and/or a TSIG key per rule
        - {address: ["127.0.0.0/8"], key: xfr-key}
      keys: [{name: xfr-key, algorithm: hmac-sha256, secret: "base64..."}]
      notify: ["127.0.0.1:5301"] # secondaries told of every change of a served version
      notify_key: xfr-key        # sign NOTIFY with this key (null: unsigned)
      ixfr_history: 20           # differences kept per zone for IXFR (0: AXFR only)
    watch:                       # the domain security watch (seawall.watch; off without servers to ask)
      interval: 5m               # one round: parent delegation, DS, lame servers, peers
      root_hints: ["192.0.2.1:53"]   # or parents: [...] (the parent's servers, asked directly)
      peers: [{address: "192.0.2.54:53", name: secondary-1}]
    fleet:                       # several servers as one, through etcd v3 (seawall.fleet; off without etcd)
      etcd: ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"]
      name: edge-fra-1           # this server in the fleet (default: the host name)
      quorum: 0                  # members that must see a backend failing before emergency (0: a majority)
      lease_ttl: 5s              # a member silent this long has left the fleet
      grace: 30s                 # etcd unreachable this long: decide alone
    health:                      # health-checked answers (seawall.health; on once a NAME.health.conf exists)
      assume_up: true            # before the first checks, targets count as up
      interval: 10s              # defaults of the checks a side file declares
      timeout: 2s
      rise: 2                    # good checks before a target is up again
      fall: 3                    # failed checks before a target is down
      hold_down: 0s              # at most one change of a target per this long
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .dns.rrl import RrlSettings
from .errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class Duration(float):
    """Seconds, written in YAML as ``500ms``, ``1s``, ``10m``, ``2h`` or a number."""

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(value)
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (try 1s, 500ms, 10m)")
        return cls(float(match[1]) * _UNITS[match[2]])


class Horizon(Duration):
    """A duration, or ``expire``: the zone's own SOA EXPIRE (RFC 1035 §3.3.13)."""

    EXPIRE = -1.0

    @classmethod
    def parse(cls, value: object) -> Horizon:
        if isinstance(value, str) and value.strip().lower() == "expire":
            return cls(cls.EXPIRE)
        parsed = Duration.parse(value)
        if parsed < 0:
            raise ValueError(f"not a duration or `expire`: {value!r}")
        return cls(parsed)

    @property
    def is_expire(self) -> bool:
        return self < 0

    def seconds(self, soa_expire: int | None) -> float:
        """The horizon in seconds for a zone whose SOA EXPIRE is ``soa_expire``."""
        if self.is_expire:
            return float(soa_expire or 0)
        return float(self)


@dataclass(frozen=True)
class Identity:
    """CHAOS TXT answers (RFC 4892); null hides the name (REFUSED), as the default."""

    version: str | None = None              # text for version.bind and version.server
    hostname: str | None = None             # text for hostname.bind
    id_server: str | None = None            # text for id.server (RFC 4892)

    def names(self) -> dict[str, str]:
        out = {}
        if self.version is not None:
            out["version.bind."] = out["version.server."] = self.version
        if self.hostname is not None:
            out["hostname.bind."] = self.hostname
        if self.id_server is not None:
            out["id.server."] = self.id_server
        return out


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key (RFC 8945) for transfers and NOTIFY."""

    name: str = ""                          # the key name both sides use (RFC 8945 §4.2)
    algorithm: str = "hmac-sha256"          # hmac-sha256, hmac-sha512, ...
    secret: str = ""                        # the shared secret, base64

    def validate(self) -> None:
        """A name, a known algorithm and a base64 secret, else ConfigError."""
        if not (self.name and self.secret):
            raise ConfigError("a tsig key needs a name and a secret")
        if self.algorithm.lower().rstrip(".") not in TSIG_ALGORITHMS:
            raise ConfigError(f"tsig algorithm {self.algorithm!r} is not one of "
                              f"{', '.join(TSIG_ALGORITHMS)}")
        try:
            base64.b64decode(self.secret, validate=True)
        except (ValueError, TypeError):
            raise ConfigError(f"tsig key {self.name}: the secret is not base64") from None


@dataclass(frozen=True)
class FleetConfig:
    """A fleet of servers coordinated through etcd (seawall.fleet): intent, quorum, epochs."""

    etcd: tuple[str, ...] = ()              # HOST:PORT of etcd members (their client port, v3 JSON gateway); none: no fleet
    name: str | None = None                 # this server's name in the fleet (default: the host name)
    quorum: int = 0                         # live members that must see a zone's backend failing before any leaves its last good data for emergency; 0: a majority of the live members
    lease_ttl: Duration = Duration(5)       # a member that has not renewed its lease this long has left the fleet
    grace: Duration = Duration(30)          # etcd unreachable this long: keep the last known intent, but decide alone (no quorum, no fencing)
    timeout: Duration = Duration(1)         # one request to etcd waits this long at most (then the next member is asked)

    @property
    def enabled(self) -> bool:
        return bool(self.etcd)

    def validate(self) -> None:
        for address in self.etcd:
            parse_listen(address)
        if self.quorum < 0:
            raise ConfigError("fleet: quorum must be 0 (a majority) or more")
        if self.lease_ttl < 2:
            raise ConfigError("fleet: lease_ttl must be at least 2s (etcd's shortest lease)")
        if self.grace < 0 or self.timeout <= 0:
            raise ConfigError("fleet: grace must not be negative, timeout must be positive")
        if self.name is not None and (not self.name or "/" in self.name):
            raise ConfigError(f"fleet: name {self.name!r} must be non-empty, without '/'")


TSIG_ALGORITHMS = ("hmac-md5", "hmac-md5.sig-alg.reg.int", "hmac-sha1", "hmac-sha224",
                   "hmac-sha256", "hmac-sha384", "hmac-sha512")
BACKEND_TYPES = ("files", "axfr")


@dataclass(frozen=True)
class BackendConfig:
    """One upstream source of zone data; ``type`` chooses the kind, the rest are its options."""

    type: str = "files"                     # files (a directory) or axfr (a hidden primary)
    path: str | None = None              # files: the directory (default: Config.zones)
    primary: str | None = None           # axfr: HOST:PORT of the hidden primary
    zones: tuple[str, ...] = ()          # axfr: the zones pulled from it
    tsig: TsigKey | None = None          # axfr: key for SOA, transfers and NOTIFY
    notify_from: tuple[str, ...] = ()    # axfr: more addresses allowed to NOTIFY
    refresh: Duration | None = None      # axfr: replaces the SOA REFRESH and RETRY timers
    ixfr: bool = True                    # axfr: try IXFR before AXFR
    transfer_timeout: Duration = Duration(30) # axfr: give up on one transfer after this long

    def validate(self) -> None:
        if self.type not in BACKEND_TYPES:
            raise ConfigError(f"backend type {self.type!r} is not one of "
                              f"{', '.join(BACKEND_TYPES)}")
        if self.type == "axfr":
            if not self.primary:
                raise ConfigError("an axfr backend needs `primary: HOST:PORT`")
            parse_listen(self.primary)
            if not self.zones:
                raise ConfigError(f"the axfr backend of {self.primary} lists no `zones`")
            if self.tsig is not None:
                self.tsig.validate()
        elif self.zones or self.primary or self.tsig:
            raise ConfigError("a files backend takes `path` only")


@dataclass(frozen=True)
class FailoverConfig:
    """Thresholds of the failover controller and its guard (see seawall.failover)."""

    probe_interval: Duration = Duration(1)  # how often each backend is probed
    probe_timeout: Duration = Duration(1)   # a probe slower than this is a failure
    fail_after: int = 3                     # consecutive failures before live -> stale/emergency
    recover_after: int = 5                  # consecutive good probes before going back to live
    stale_for: Horizon = Horizon(Horizon.EXPIRE)  # serve the last good data this long after the backend last confirmed it; expire: the zone's SOA EXPIRE; 0s: straight to emergency
    startup_wait: Duration = Duration(5)    # at start-up, wait this long for a remote backend
    max_delete_ratio: float = 0.3           # the guard: at most this share of RRsets deleted at once
    max_change_ratio: float = 0.5           # the guard: at most this share changed at once
    emergency_ttl_max: int | None = 300     # cap TTLs of emergency data (null: no cap)
    stale_ttl_max: int | None = None        # cap TTLs of stale data (null: no cap)
    require_emergency: bool = True          # a served zone without an emergency file stops the start (a broken one only makes the zone unprotected)
    protect: tuple[str, ...] = ()           # RRsets a version may never remove or empty, as "NAME TYPE" (e.g. "www.example.com A")
    signature_margin: Duration = Duration(3600)  # signed data whose first RRSIG expires within this is left for emergency
    flap_half_life: Duration = Duration(600)  # flap damping (RFC 2439): a bounce counts half after this long
    flap_max_factor: int = 32               # flap damping: recover_after is multiplied by at most this
    remove_after: Duration = Duration(3600)  # files backend: a zone whose file stays absent this long is removed

    def validate(self) -> None:
        if self.fail_after < 1 or self.recover_after < 1:
            raise ConfigError("failover: fail_after and recover_after must be at least 1")
        if self.probe_interval <= 0 or self.probe_timeout <= 0:
            raise ConfigError("failover: probe_interval and probe_timeout must be positive")
        for key in ("max_delete_ratio", "max_change_ratio"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"failover: {key} {value} must be within 0..1")
        for key in ("emergency_ttl_max", "stale_ttl_max"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"failover: {key} must not be negative")
        if self.flap_half_life <= 0 or self.flap_max_factor < 1:
            raise ConfigError("failover: flap_half_life must be positive and flap_max_factor "
                              "at least 1")
        for item in self.protect:
            parse_protected(item)


def parse_protected(text: str) -> tuple[str, str]:
    """``"www.example.com A"`` into a fully qualified name and a type mnemonic."""
    parts = text.split()
    if len(parts) != 2:
        raise ConfigError(f"failover.protect: {text!r} is not \"NAME TYPE\"")
    name, rdtype = parts
    if not re.fullmatch(r"[A-Za-z0-9_*.-]+", name) or not re.fullmatch(r"[A-Za-z0-9]+", rdtype):
        raise ConfigError(f"failover.protect: {text!r} is not \"NAME TYPE\"")
    return (name.lower().rstrip(".") + ".", rdtype.upper())


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus /metrics, /healthz and /readyz over HTTP; null listen: off."""

    listen: str | None = None            # e.g. "127.0.0.1:9153"
    max_connections: int = 16            # open connections at most (half from one client prefix); more are closed at once
    idle_timeout: Duration = Duration(5) # a connection must send its request and read the answer within this


@dataclass(frozen=True)
class HealthConfig:
    """Health-checked answers (seawall.health): defaults for the checks declared in NAME.health.conf side files."""

    enabled: bool = True                    # false: side files are ignored, every RRset is served as the zone has it
    assume_up: bool = True                  # before its first checks a target counts as up (false: down, so only checked targets answer)
    interval: Duration = Duration(10)       # a target is checked this often (a side file may set its own)
    timeout: Duration = Duration(2)         # a check slower than this has failed
    rise: int = 2                           # consecutive good checks before a down target is up again
    fall: int = 3                           # consecutive failed checks before an up target is down
    hold_down: Duration = Duration(0)       # at most one change of a target's state per this long (damps flapping)
    stall_after: Duration = Duration(3)     # no result from a target's checker for interval + timeout + this: the checker is stalled, its last view stays

    def validate(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ConfigError("health: interval and timeout must be positive")
        if self.rise < 1 or self.fall < 1:
            raise ConfigError("health: rise and fall must be at least 1")
        if self.hold_down < 0 or self.stall_after <= 0:
            raise ConfigError("health: hold_down must not be negative, stall_after must be "
                              "positive")


@dataclass(frozen=True)
class ControlConfig:
    """The control channel of `seawall failover` and `seawall reload` (seawall.failover.control)."""

    enabled: bool = True                 # the Unix socket control.sock in state_dir, mode 0600
    listen: str | None = None            # also a TCP listener on loopback (e.g. 127.0.0.1:5380), HMAC-signed requests only
    secret_file: str | None = None       # file holding the TCP listener's shared secret (required with listen)
    max_skew: Duration = Duration(30)    # a signed request whose timestamp is further off is refused

    def validate(self) -> None:
        if self.listen is None:
            return
        host, _ = parse_listen(self.listen)
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            raise ConfigError(f"control.listen {self.listen!r} is not a loopback address "
                              "(reach a remote server through an SSH tunnel)")
        if not self.secret_file:
            raise ConfigError("control.listen needs control.secret_file (the shared secret)")
        if self.max_skew <= 0:
            raise ConfigError("control.max_skew must be positive")


WATCH_DIGESTS = ("axfr", "names", "soa")


@dataclass(frozen=True)
class WatchPeer:
    """A nameserver that should serve the same zones: an own secondary or another provider."""

    address: str = ""                       # HOST:PORT of the peer
    name: str | None = None                 # its label in findings and metrics (default: the address)
    zones: tuple[str, ...] = ()             # the zones it serves (none: every watched zone)
    digest: str = "axfr"                    # axfr: a digest of the whole zone (names when AXFR is refused); names: only the RRsets in names; soa: the serial only
    names: tuple[str, ...] = ()             # RRsets compared as "NAME TYPE" (e.g. "www.example.com A") when AXFR is refused or digest is names
    tsig: TsigKey | None = None             # key for the peer's AXFR

    @property
    def label(self) -> str:
        return self.name or self.address


@dataclass(frozen=True)
class WatchConfig:
    """The domain security watch (seawall.watch): the parent's delegation, peers, deadlines."""

    interval: Duration = Duration(300)      # one round of checks every this long
    timeout: Duration = Duration(2)         # one query waits this long for its answer
    root_hints: tuple[str, ...] = ()        # HOST:PORT of root servers; the parent of each zone is found from them by following referrals
    parents: tuple[str, ...] = ()           # HOST:PORT of the parent zone's servers, asked directly instead of walking down from root_hints (zones under one parent)
    port: int = 53                          # the port of servers learned from referrals and NS records
    zones: tuple[str, ...] = ()             # the zones watched (none: every served zone)
    lame: bool = True                       # ask every listed nameserver whether it answers for the zone with authority
    peers: tuple[WatchPeer, ...] = ()       # secondaries and other providers asked for the SOA and a digest
    drift_after: Duration = Duration(60)    # a peer behind or different for this long is a finding (a NOTIFY-driven secondary lags a moment after each change)
    signature_warning: Duration = Duration(86400)  # a finding when the first RRSIG of live, last good or emergency data expires within this

    @property
    def enabled(self) -> bool:
        """On once there is something to ask: root hints, parent servers or peers."""
        return bool(self.root_hints or self.parents or self.peers)

    def validate(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ConfigError("watch: interval and timeout must be positive")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"watch: port {self.port} is out of range")
        for address in self.root_hints + self.parents:
            parse_listen(address)
        for peer in self.peers:
            if not peer.address:
                raise ConfigError("watch.peers: a peer needs `address: HOST:PORT`")
            parse_listen(peer.address)
            if peer.digest not in WATCH_DIGESTS:
                raise ConfigError(f"watch.peers: {peer.label}: digest {peer.digest!r} is not "
                                  f"one of {', '.join(WATCH_DIGESTS)}")
            if peer.digest == "names" and not peer.names:
                raise ConfigError(f"watch.peers: {peer.label}: digest names needs `names`")
            for item in peer.names:
                if len(item.split()) != 2:
                    raise ConfigError(f"watch.peers: {peer.label}: {item!r} is not \"NAME TYPE\"")
            if peer.tsig is not None:
                peer.tsig.validate()


TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


@dataclass(frozen=True)
class TransferRule:
    """One rule of the transfer ACL: it allows a request that matches all it names."""

    address: tuple[str, ...] = ()           # client prefixes, e.g. 192.0.2.0/24 or ::1 (none: any)
    key: str | None = None                  # the request must be signed with this key (a name in keys)


@dataclass(frozen=True)
class TransfersConfig:
    """Zone transfers out and NOTIFY (see seawall.dns.primary); empty lists: off."""

    allow: tuple[TransferRule, ...] = ()    # ACL for AXFR/IXFR; no rule: every transfer is refused
    keys: tuple[TsigKey, ...] = ()          # TSIG keys (RFC 8945) that requests may be signed with
    notify: tuple[str, ...] = ()            # HOST:PORT of secondaries to NOTIFY on every change
    notify_key: str | None = None           # sign NOTIFY with this key (a name in keys)
    ixfr_history: int = 20                  # differences kept per zone for IXFR; 0: always AXFR

    @property
    def enabled(self) -> bool:
        return bool(self.allow or self.notify)

    def validate(self) -> None:
        names = set()
        for key in self.keys:
            if not (key.name and key.secret):
                raise ConfigError("transfers.keys: a key needs a name and a secret")
            if key.algorithm.lower().rstrip(".") not in TSIG_ALGORITHMS:
                raise ConfigError(f"transfers.keys: {key.name}: algorithm {key.algorithm!r} is "
                                  f"not one of {', '.join(TSIG_ALGORITHMS)}")
            try:
                base64.b64decode(key.secret, validate=True)
            except ValueError:
                raise ConfigError(f"transfers.keys: {key.name}: the secret is not "
                                  "base64") from None
            names.add(key.name.rstrip(".").lower())
        for rule in self.allow:
            if not rule.address and not rule.key:
                raise ConfigError("transfers.allow: a rule needs an address, a key or both")
            for prefix in rule.address:
                try:
                    ipaddress.ip_network(prefix, strict=False)
                except ValueError:
                    raise ConfigError(f"transfers.allow: {prefix!r} is not an address "
                                      "or prefix") from None
            if rule.key and rule.key.rstrip(".").lower() not in names:
                raise ConfigError(f"transfers.allow: key {rule.key!r} is not in transfers.keys")
        for target in self.notify:
            parse_listen(target)
        if self.notify_key and self.notify_key.rstrip(".").lower() not in names:
            raise ConfigError(f"transfers.notify_key {self.notify_key!r} is not in "
                              "transfers.keys")
        if self.ixfr_history < 0:
            raise ConfigError("transfers.ixfr_history must not be negative")


@dataclass(frozen=True)
class Config:
    """The whole configuration of one server."""

    listen: tuple[str, ...] = ("127.0.0.1:5353",) # HOST:PORT or [IPv6]:PORT, UDP and TCP each
    zones: str = "zones"                    # directory of live zone files (a git checkout)
    emergency_dir: str = "zones/emergency"  # NAME.zone here is the emergency version of NAME
    state_dir: str = ".seawall"             # last good snapshots, overrides, events.jsonl, control socket
    udp_payload: int = 1232                 # our EDNS(0) UDP payload size (RFC 6891 §6.2.5)
    tcp_idle_timeout: Duration = Duration(10) # close a TCP connection silent this long (RFC 7766 §6.2.3)
    tcp_max_message: int = 65535            # larger TCP messages close the connection
    answer_cache: int = 100_000             # rendered answers kept per zone set version
    semantic_checks: bool = True            # false: a zone without apex NS is served, with a warning
    identity: Identity = field(default_factory=Identity) # CHAOS TXT identity answers
    log_level: str = "info"                 # debug, info, warning or error
    log_format: str = "text"                # text, or json for one JSON object per line
    query_log_sample: int = 0               # log 1 query in N (seawall.querylog; each worker counts its own); 0: none
    backends: tuple[BackendConfig, ...] = () # where live data comes from (default: files on zones)
    failover: FailoverConfig = field(default_factory=FailoverConfig) # the controller: thresholds and the guard
    workers: int = 0                     # worker processes answering queries; 0: one per CPU core; 1: the server process alone
    tcp_max_connections: int = 1000      # open TCP connections, all clients together
    tcp_max_per_client: int = 64         # open TCP connections from one client prefix (below)
    tcp_max_per_listener: int = 0        # open TCP connections on one listen address; 0: tcp_max_connections
    tcp_client_ipv4_prefix: int = 32    # an IPv4 client is its /32 (24: its /24) for tcp_max_per_client
    tcp_client_ipv6_prefix: int = 64    # an IPv6 client is its /64 (at most 64: one /64 is one client)
    rrl: RrlSettings = field(default_factory=RrlSettings) # response rate limiting on UDP
    metrics: MetricsConfig = field(default_factory=lambda: MetricsConfig()) # Prometheus metrics and health endpoints
    user: str | None = None              # drop to this user once the sockets are open (root)
    group: str | None = None             # ... and this group (default: the user's)
    control: ControlConfig = field(default_factory=ControlConfig) # the control channel of seawall failover
    transfers: TransfersConfig = field(default_factory=TransfersConfig) # AXFR/IXFR out and NOTIFY to secondaries
    watch: WatchConfig = field(default_factory=WatchConfig) # the domain security watch: parent delegation, DS, peers, signature deadlines (on once it has root_hints, parents or peers)
    fleet: FleetConfig = field(default_factory=FleetConfig) # several servers as one through etcd: shared intent, quorum for emergency, epochs (on once it has etcd endpoints)
    health: HealthConfig = field(default_factory=HealthConfig) # health-checked answers: checks of the targets declared in NAME.health.conf beside the zone files (on once such a file exists)
    base_dir: str = "."  # where relative paths are resolved: the config file's folder

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else Path(self.base_dir) / path

    def validate(self) -> None:
        if not 512 <= self.udp_payload <= 65535:
            raise ConfigError(f"udp_payload {self.udp_payload} must be within 512..65535")
        if not 0 <= self.workers <= 256:
            raise ConfigError(f"workers {self.workers} must be within 0..256 (0: one per core)")
        if not 8 <= self.tcp_client_ipv4_prefix <= 32:
            raise ConfigError("tcp_client_ipv4_prefix must be within 8..32")
        if not 16 <= self.tcp_client_ipv6_prefix <= 64:
            raise ConfigError("tcp_client_ipv6_prefix must be within 16..64 (a /64 is one client)")
        if self.group and not self.user:
            raise ConfigError("group is set without user: a process that keeps uid 0 keeps "
                              "every privilege whatever its group; set user too")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        for address in self.listen:
            parse_listen(address)
        for backend in self.backends:
            backend.validate()
        self.failover.validate()
        self.transfers.validate()
        self.control.validate()
        self.watch.validate()
        self.fleet.validate()
        self.health.validate()

    def worker_count(self) -> int:
        """How many processes answer queries: ``workers``, or the cores we may run on."""
        if self.workers:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:   # no sched_getaffinity (not Linux)
            return max(1, os.cpu_count() or 1)

    def backend_configs(self) -> tuple[BackendConfig, ...]:
        """The configured backends, or the embedded default: files on ``zones``."""
        if self.backends:
            return tuple(dataclasses.replace(b, path=self.zones)
                         if b.type == "files" and not b.path else b for b in self.backends)
        return (BackendConfig(type="files", path=self.zones),)


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:53``, ``[::1]:53`` or ``:53`` (all IPv4) into host and port."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]*|localhost):(\d+)", text.strip())
    if not match:
        raise ConfigError(f"listen address {text!r} is not HOST:PORT or [IPv6]:PORT")
    host = match[1] if match[1] is not None else (match[3] or "0.0.0.0")
    port = int(match[2] or match[4])
    if not 0 <= port <= 65535:
        raise ConfigError(f"listen port {port} is out of range")
    return host, port


def load_config(path: Path | None, **overrides: Any) -> Config:
    """Read ``path`` (if given), then apply command-line ``overrides`` (None = unset)."""
    values: dict[str, Any] = {}
    base_dir = "."
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            node = yaml.compose(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if node is not None:
            values = _from_node(Config, node, str(path))
        base_dir = str(path.parent)
    values.setdefault("base_dir", base_dir)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    config = Config(**values)
    config.validate()
    return config


def _from_node(cls: type, node: yaml.Node, source: str) -> dict[str, Any]:
    """Keyword arguments for dataclass ``cls`` from a YAML mapping node, checked."""
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}:{line}: unknown key {key!r} (known: {known})")
        try:
            out[key] = _convert(hints[key], value_node, source)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}:{line}: {key}: {exc}") from None
    return out


def _convert(hint: Any, node: yaml.Node, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        hint = options[0]
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return hint(**_from_node(hint, node, source))
    if origin is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
        if not isinstance(node, yaml.SequenceNode):
            raise TypeError("expected a list")
        item = typing.get_args(hint)[0]
        return tuple(item(**_from_node(item, child, source)) for child in node.value)
    value = yaml.safe_load(yaml.serialize(node))
    if value is None:
        raise TypeError("expected a value, not null")
    if hint is Horizon:
        return Horizon.parse(value)
    if hint is Duration:
        return Duration.parse(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise TypeError("expected a list")
        return tuple(str(v) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise TypeError(f"expected a string, not {value!r}")
        return str(value)
    return value
