"""Failover: keep answering whatever happens to the backends (live -> last good -> emergency).

Modules, one concept each:

* ``zonestate`` — what is known of one zone: the four states (live, held,
  stale, emergency), overrides, held versions, flap damping.
* ``controller`` — the per-zone state machine with hysteresis, damping,
  forced overrides, operator accept and remove, status. Synchronous and
  clock-driven (monotonic for durations), so it is tested without a network.
* ``guard`` — judges every new version: validation, apex and protected
  RRsets, RFC 1982 serials (ordered ones), the delete and change ratios;
  the reasons name the numbers.
* ``emergency`` — emergency zones loaded and compared with live (NS, keys,
  expiry, drift); TTL caps.
* ``store`` — the state directory: lock, checksummed last good snapshots,
  overrides, events; safe names, no links followed.
* ``service`` — the asyncio side: start-up, probe loops, timers, drill faults.
* ``control`` — the control channel server (``control.sock``, signed TCP);
  ``control_client`` — its client, for ``seawall failover`` and ``seawall reload``.
* ``drill_plan`` — a drill's preflight, plan, objectives and probe expectations;
  ``drill`` — the running drill on the server (fault, deadline, record);
  ``drill_client`` — the CLI's probes and judging; ``drill_report`` — the report;
  ``drill_target`` and ``drill_target_report`` — the target-down drill of the
  health-checked answers (server side; its report).

Configuration (every key has a default)::

    state_dir: .seawall
    emergency_dir: zones/emergency
    failover:
      probe_interval: 1s       # each backend is looked at this often
      probe_timeout: 1s        # a probe slower than this is a failure
      fail_after: 3            # consecutive failures: live -> stale or emergency
      recover_after: 5         # consecutive successes: back to live
      stale_for: expire        # serve the last good data this long (expire: the SOA EXPIRE)
      startup_wait: 5s         # a remote backend gets this long at start-up
      max_delete_ratio: 0.3    # a version may delete at most 30% of the RRsets
      max_change_ratio: 0.5    # ... and change at most 50% of them
      emergency_ttl_max: 300   # TTL (and SOA MINIMUM) cap in emergency state
      stale_ttl_max: null      # TTL cap in stale state
      require_emergency: true  # a served zone without an emergency file stops the start
      protect: []              # RRsets never removed or emptied, e.g. "www.example.com A"
      signature_margin: 1h     # signed data this close to expiry goes to emergency
      flap_half_life: 10m      # flap damping: a bounce counts half after this long
      flap_max_factor: 32      # flap damping: at most this many times recover_after
      remove_after: 1h         # files: a zone file absent this long is a removed zone

Events (``state_dir/events.jsonl``, one JSON object per line)::

    {"time": "2026-11-27T00:30:23.760Z", "ts": 1795739423.76, "zone": "example.net.",
     "kind": "transition", "from": "live", "to": "emergency", "cause": "probe",
     "reason": "3 consecutive failures (fail_after=3); last: SOA query ... timed out",
     "serial_from": 2026112701, "serial_to": 1, "forced": false, ...}

``kind`` is transition, updated, rejected, override, expired, removed, fault,
signatures, unprotected, protected or snapshot-ignored; ``cause`` is probe,
guard, operator, drill, startup, backend or signatures.

What a control channel calls (``App.failover`` is the FailoverService)::

    service.status()                                   # JSON-ready dict, every zone
    service.controller.force("emergency", ["example.net"], "reason", until=ts)
    service.controller.release(None)                   # None: every zone
    service.controller.accept("example.net")           # serve the held version
    service.inject_fault(Fault("backend-hang", zones=frozenset({origin}), until=ts))
    service.clear_faults()
    service.reload()                                   # look at every backend now
    service.store.read_events(since=ts, zone="example.net.")
"""
