"""Zone images: a zone version's answer table, compiled once and kept on disk.

Building the answer table of a big zone takes seconds of CPU (tens of µs per
question through the engine); a restart that finds the image of the
version it serves reads it instead, in a fraction of that, and its first
workers start warm. Each table the server builds (``answers.py``) is written
here once, in a background thread, as ``state_dir/images/NAME.DIGEST.img``
(``NAME`` from ``seawall.failover.store.safe_name``, ``DIGEST`` the zone's
content digest); the newest ``KEEP`` images of a zone are kept (its live and
emergency versions, the one before).

Format (little-endian, position-independent: offsets are from the start of
the payload, nothing points into memory)::

    header   magic "SWZIMAGE", format u16, reserved u16, serial u32,
             bodies u32, foreign u32, zone digest 16, engine digest 16,
             origins digest 16, payload length u64, SHA-256 of the payload 32
    payload  bodies × (key len u16, key, entry len u32, entry (answers.Entry),
                       SOA read u8, names u8, names × (len u8, name);
                       no names and no SOA: it read only its own name)
             foreign × (name len u8, name, type u16)
             index: bodies × u32, the offset of each body record

An image is used only when everything it was made from is the same: the
zone's content (every node, RRset, TTL and record, in order: ``zone_digest``),
the set of zones served beside it (a name belongs to the most specific zone),
and the code that makes answers (``engine_digest``: the answer path's source
and dnspython's version). Anything else — a wrong checksum, a torn or
truncated file, another format — is ignored with a log line, and the table
is built as if there were no image. Files are opened without following
links, created 0600 in a 0700 directory, and replaced atomically.

Example::

    write_image(directory, zone, origins, bodies, traces, foreign)
    loaded = read_image(directory, zone, origins)   # (bodies, traces, foreign) or None
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import dns.name
import dns.version

from ..failover.store import safe_name
from ..zones.model import Zone

log = logging.getLogger("seawall.dns")

MAGIC = b"SWZIMAGE"
FORMAT = 2
HEADER = struct.Struct("<8sHHIII16s16s16sQ32s")
KEEP = 3                 # images kept per zone (live, emergency, the one before)
SUFFIX = ".img"
ENGINE_SOURCES = ("dns/engine.py", "dns/wire.py", "dns/render.py", "dns/query.py",
                  "dns/answers.py", "dns/dnssec.py", "dns/image.py", "zones/model.py",
                  "zones/leaves.py")

Entry = tuple[int, bytes, bytes]
Trace = tuple[tuple[bytes, ...], bool]

_engine: bytes | None = None


def engine_digest() -> bytes:
    """A digest of the code that makes answers: an image made by other code is not used."""
    global _engine
    if _engine is None:
        digest = hashlib.blake2b(dns.version.version.encode(), digest_size=16)
        root = Path(__file__).resolve().parent.parent
        for name in ENGINE_SOURCES:
            try:
                digest.update((root / name).read_bytes())
            except OSError:
                digest.update(b"missing " + name.encode())
        _engine = digest.digest()
    return _engine


def zone_digest(zone: Zone) -> bytes:
    """A digest of a zone's whole content: every name (in label order, which no
    answer depends on), its RRsets in the order they are served, TTLs, records."""
    digest = hashlib.blake2b(zone.origin.to_wire(), digest_size=16)
    update = digest.update
    stack = [zone.apex]
    _node(update, zone.apex)
    while stack:
        node = stack.pop()
        entries = node.children.entries
        for key in sorted(entries):
            entry = entries[key]
            update(b"\x00" + bytes((len(key),)) + key)
            if type(entry) is tuple:
                update(repr(entry).encode())
            else:
                _node(update, entry)   # type: ignore[arg-type]
                stack.append(entry)    # type: ignore[arg-type]
        update(b"\x01")
    for key, node in zone.nsec3_nodes.items():
        update(b"\x02" + key)
        _node(update, node)
    return digest.digest()


def _node(update, node) -> None:   # noqa: ANN001
    update(bytes((node.is_apex, node.is_delegation, node.is_occluded)))
    for table in (node.rrsets, node.rrsigs):
        for rdtype, rrset in table.items():
            update(struct.pack("<HI", rdtype, rrset.ttl))
            for rdata in rrset:
                wire = rdata.to_digestable()
                update(struct.pack("<H", len(wire)) + wire)
        update(b"\x03")


def origins_digest(origins: Iterable[dns.name.Name]) -> bytes:
    wires = sorted(origin.canonicalize().to_wire() for origin in origins)
    return hashlib.blake2b(b"".join(wires), digest_size=16).digest()


# ------------------------------------------------------------------ writing

def write_image(directory: Path, zone: Zone, digest: bytes, origins: Iterable[dns.name.Name],
                bodies: dict[bytes, Entry], traces: dict[bytes, Trace],
                foreign: list[tuple[bytes, int]]) -> Path:
    """Write one zone version's table; the file written. Records are streamed
    (no copy of the whole table in memory); the header, with the checksum, last."""
    name = f"{safe_name(zone.origin)}.{digest.hex()}{SUFFIX}"
    dfd = _open_dir(directory, create=True)
    try:
        tmp = name + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600,
                     dir_fd=dfd)
        with open(fd, "wb", buffering=1 << 20) as out:
            out.write(bytes(HEADER.size))
            checksum = hashlib.sha256()
            length = 0

            def put(data: bytes) -> None:
                nonlocal length
                out.write(data)
                checksum.update(data)
                length += len(data)

            index = []
            own: Trace = ((), False)    # no names: the body read only its own name
            for key, entry in bodies.items():
                names, soa_read = traces.get(key, own)
                index.append(length)
                put(b"".join([
                    struct.pack("<H", len(key)), key, struct.pack("<I", len(entry)), entry,
                    bytes((1 if soa_read else 0, len(names))),
                    b"".join(bytes((len(n),)) + n for n in names)]))
            for qname, qtype in foreign:
                put(bytes((len(qname),)) + qname + struct.pack("<H", qtype))
            put(struct.pack(f"<{len(index)}I", *index))
            out.seek(0)
            out.write(HEADER.pack(MAGIC, FORMAT, 0, zone.serial, len(bodies), len(foreign),
                                  digest, engine_digest(), origins_digest(origins), length,
                                  checksum.digest()))
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        _prune(dfd, safe_name(zone.origin), keep=name)
    finally:
        os.close(dfd)
    return directory / name


def _prune(dfd: int, prefix: str, keep: str) -> None:
    """The newest KEEP images of one zone stay; older ones go."""
    mine = []
    for entry in os.listdir(dfd):
        if entry.startswith(prefix + ".") and entry.endswith(SUFFIX) and \
                entry.count(".") == prefix.count(".") + 2:
            try:
                mine.append((os.stat(entry, dir_fd=dfd, follow_symlinks=False).st_mtime, entry))
            except OSError:
                continue
    mine.sort(reverse=True)
    for _, entry in mine[KEEP:]:
        if entry != keep:
            try:
                os.unlink(entry, dir_fd=dfd)
            except OSError:
                pass


# ------------------------------------------------------------------ reading

def image_path(directory: Path, zone: Zone, digest: bytes) -> Path:
    return directory / f"{safe_name(zone.origin)}.{digest.hex()}{SUFFIX}"


def read_image(directory: Path, zone: Zone, digest: bytes, origins: Iterable[dns.name.Name]
               ) -> tuple[dict[bytes, Entry], dict[bytes, Trace], list[tuple[bytes, int]]] | None:
    """The table kept for exactly this zone version and set of zones, else None."""
    name = image_path(directory, zone, digest).name
    try:
        dfd = _open_dir(directory, create=False)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except OSError as exc:
        os.close(dfd)
        log.info("zone image: none usable: zone=%s serial=%d digest=%s reason=%s",
                 zone.origin, zone.serial, digest.hex(), exc.strerror)
        return None
    try:
        size = os.fstat(fd).st_size
        if size < HEADER.size:
            raise ValueError("shorter than its header")
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as image:
            return _parse(image, size, zone, digest, origins)
    except (ValueError, IndexError, struct.error, OSError) as exc:
        log.warning("zone image ignored: zone=%s file=%s reason=%s", zone.origin, name, exc)
        return None
    finally:
        os.close(fd)
        os.close(dfd)


def _parse(image: mmap.mmap, size: int, zone: Zone, digest: bytes,
           origins: Iterable[dns.name.Name]
           ) -> tuple[dict[bytes, Entry], dict[bytes, Trace], list[tuple[bytes, int]]]:
    (magic, form, _, serial, count, foreign_count, zone_dg, engine_dg, origins_dg,
     length, checksum) = HEADER.unpack_from(image, 0)
    if magic != MAGIC or form != FORMAT:
        raise ValueError(f"not an image of format {FORMAT}")
    if zone_dg != digest or serial != zone.serial:
        raise ValueError("made from another version of the zone")
    if engine_dg != engine_digest():
        raise ValueError("made by another version of the answer code")
    if origins_dg != origins_digest(origins):
        raise ValueError("made for another set of zones")
    if HEADER.size + length != size:
        raise ValueError("truncated or extended")
    payload = memoryview(image)[HEADER.size:]
    try:
        if hashlib.sha256(payload).digest() != checksum:
            raise ValueError("checksum mismatch")
        bodies: dict[bytes, Entry] = {}
        traces: dict[bytes, Trace] = {}
        unpack = struct.unpack_from
        at = HEADER.size
        for _ in range(count):
            (key_len,) = unpack("<H", image, at)
            key = image[at + 2:at + 2 + key_len]
            at += 2 + key_len
            (entry_len,) = unpack("<I", image, at)
            entry = image[at + 4:at + 4 + entry_len]
            if len(entry) != entry_len:
                raise ValueError("truncated record")
            at += 4 + entry_len
            soa_read, names_count = image[at], image[at + 1]
            at += 2
            names = []
            for _ in range(names_count):
                length_ = image[at]
                names.append(image[at + 1:at + 1 + length_])
                at += 1 + length_
            bodies[key] = entry
            if names or soa_read:
                traces[key] = (tuple(names), bool(soa_read))
        foreign = []
        for _ in range(foreign_count):
            length_ = image[at]
            name = image[at + 1:at + 1 + length_]
            (qtype,) = unpack("<H", image, at + 1 + length_)
            foreign.append((name, qtype))
            at += 3 + length_
        if at + 4 * count != size:
            raise ValueError("records and index disagree")
    finally:
        payload.release()
    return bodies, traces, foreign


def _open_dir(directory: Path, create: bool) -> int:
    if create:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


__all__ = ["engine_digest", "read_image", "write_image", "zone_digest"]
