"""A fleet: several Seawall servers acting as one, coordinated through etcd v3.

Optional (``fleet:`` in the configuration; without it nothing here runs and
no etcd is needed)::

    fleet:
      etcd: ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"]
      name: edge-fra-1
      quorum: 2          # 0: a majority of the live members
      lease_ttl: 5s
      grace: 30s

Modules: :mod:`.etcd` (a small client of etcd's v3 JSON gateway, every call
under a deadline), :mod:`.view` (the keys, read into one view; the quorum
vote and the fence as pure functions), :mod:`.service` (the server's side:
lease, report, orders, epochs, the controller's hooks), :mod:`.orders` (the
operator's side: writing orders, waiting for the members, the fleet's status),
:mod:`.drill` (``seawall failover drill --fleet``: a drill on every live
member, one report).
"""

from .service import FleetService

__all__ = ["FleetService"]
