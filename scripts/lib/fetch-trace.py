#!/usr/bin/env python3
"""What a consumer's Fetch requests asked for and how the broker answered, from a loopback capture.

    tcpdump -i lo -s 256 -w fetch.pcap 'tcp port PORT'   # while the consumer runs
    scripts/lib/fetch-trace.py fetch.pcap PORT [--list MS]   # --list: also each Fetch whose answer took >= MS

Used to compare two brokers under the same client (scripts/bench-data-path.sh's consume rows): for every Fetch
it prints nothing, at the end one summary of

  - what the client asked: request version, max_wait_ms, min_bytes, max_bytes, partitions per request, the
    partition max bytes, the session id and epoch (KIP-227 incremental fetch: epoch > 0 with a session id);
  - what the broker did: the bytes of each response, the service time (the request's last byte to the
    response's first byte: the broker's time, including any wait for max_wait_ms), the transfer time (first to
    last byte of the response);
  - what the client did: the gap from a response's last byte to the next Fetch on that connection.

The capture may be cut short (-s 256): frames are found from the TCP sequence numbers and the Kafka length
prefix, so only each frame's first bytes are needed. Only the classic pcap format with Ethernet (Linux lo) or
raw IPv4 link types is read.
"""

import statistics
import struct
import sys
from collections import defaultdict

FETCH = 1


def packets(path):
    """(time, src_port, dst_port, seq, payload_len, payload_prefix) of every IPv4 TCP packet with a payload."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (pcapng is not read)")
        nanos = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        link_len = {1: 14, 101: 0, 228: 0}.get(linktype)
        if link_len is None:
            raise SystemExit(f"{path}: link type {linktype} is not read (Ethernet or raw IP only)")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            t = sec + frac / (1e9 if nanos else 1e6)
            ip = data[link_len:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:]
            if len(tcp) < 20:
                continue
            sport, dport, seq = struct.unpack(">HHI", tcp[:8])
            doff = (tcp[12] >> 4) * 4
            plen = total - ihl - doff
            if plen <= 0:
                continue
            yield t, sport, dport, seq, plen, tcp[doff:]


class Stream:
    """One direction of one connection: cuts it into Kafka frames (a 4-byte length, then the frame)."""

    def __init__(self):
        self.base = None  # the sequence number of the first byte seen
        self.next_frame = 0  # stream offset of the next frame's length prefix
        self.frames = []  # [offset, length, first_time, last_time, prefix bytes]
        self.open = None

    def add(self, t, seq, plen, prefix):
        if self.base is None:
            self.base = seq
            self.next_frame = 0
        off = (seq - self.base) & 0xFFFFFFFF
        end = off + plen
        if self.open is not None and off < self.open[0] + 4 + self.open[1]:
            self.open[3] = t
        while self.next_frame < end and off <= self.next_frame:
            at = self.next_frame - off
            if at + 4 > len(prefix):
                # The length prefix was cut off by the snap length: give up on this stream.
                self.next_frame = 1 << 62
                return
            length = struct.unpack(">i", prefix[at : at + 4])[0]
            frame = [self.next_frame, length, t, t, prefix[at + 4 :]]
            self.frames.append(frame)
            self.open = frame
            self.next_frame += 4 + length


def uvarint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fetch_request(body):
    """The fields before the topics of a Fetch request (header included), or None if the prefix is too short."""
    try:
        api_key, version, corr = struct.unpack(">hhi", body[:8])
        if api_key != FETCH:
            return None
        i = 8
        (client_len,) = struct.unpack(">h", body[i : i + 2])
        i += 2 + max(client_len, 0)
        flexible = version >= 12
        if flexible:
            tags, i = uvarint(body, i)
            for _ in range(tags):
                _tag, i = uvarint(body, i)
                size, i = uvarint(body, i)
                i += size
        r = {"version": version, "correlation": corr}
        if version < 15:
            i += 4
        r["max_wait_ms"], r["min_bytes"] = struct.unpack(">ii", body[i : i + 8])
        i += 8
        if version >= 3:
            (r["max_bytes"],) = struct.unpack(">i", body[i : i + 4])
            i += 4
        if version >= 4:
            i += 1
        if version >= 7:
            r["session_id"], r["session_epoch"] = struct.unpack(">ii", body[i : i + 8])
            i += 8
        if flexible:
            n, i = uvarint(body, i)
            topics = n - 1
        else:
            (topics,) = struct.unpack(">i", body[i : i + 4])
            i += 4
        r["topics"] = topics
        if topics >= 1:
            if version >= 13:
                i += 16
            elif flexible:
                n, i = uvarint(body, i)
                i += n - 1
            else:
                (n,) = struct.unpack(">h", body[i : i + 2])
                i += 2 + n
            if flexible:
                n, i = uvarint(body, i)
                r["partitions"] = n - 1
            else:
                (r["partitions"],) = struct.unpack(">i", body[i : i + 4])
                i += 4
            i += 4  # partition
            if version >= 9:
                i += 4
            i += 8  # fetch offset
            if version >= 12:
                i += 4
            if version >= 5:
                i += 8
            (r["partition_max_bytes"],) = struct.unpack(">i", body[i : i + 4])
        return r
    except (struct.error, IndexError):
        return None


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--list"):
        raise SystemExit(__doc__)
    path, port = sys.argv[1], int(sys.argv[2])
    list_ms = float(sys.argv[4]) if len(sys.argv) == 5 else None
    streams = defaultdict(Stream)
    for t, sport, dport, seq, plen, prefix in packets(path):
        if dport == port:
            streams[(sport, "req")].add(t, seq, plen, prefix)
        elif sport == port:
            streams[(dport, "resp")].add(t, seq, plen, prefix)
    rows = []
    for (client, kind), stream in streams.items():
        if kind != "req":
            continue
        responses = {}
        for off, length, first, last, prefix in streams[(client, "resp")].frames:
            if len(prefix) >= 4:
                responses[struct.unpack(">i", prefix[:4])[0]] = (length, first, last)
        fetches = []
        for off, length, first, last, prefix in stream.frames:
            req = fetch_request(prefix)
            if req and req["correlation"] in responses:
                fetches.append((first, last, req, responses[req["correlation"]]))
        fetches.sort(key=lambda f: f[0])
        for n, (first, last, req, (rlen, rfirst, rlast)) in enumerate(fetches):
            gap = fetches[n + 1][0] - rlast if n + 1 < len(fetches) else None
            rows.append((req, rlen, rfirst - last, rlast - rfirst, gap))
            if list_ms is not None and (rfirst - last) * 1000 >= list_ms:
                print(
                    f"client port {client}, fetch {n + 1} of {len(fetches)}: {req}, answered {rlen} bytes"
                    f" after {(rfirst - last) * 1000:.1f} ms"
                )
    if not rows:
        raise SystemExit("no Fetch request with its response in the capture")

    def field(name):
        return sorted({str(r[0].get(name, "-")) for r in rows})

    print(f"fetches: {len(rows)}")
    for name in ("version", "max_wait_ms", "min_bytes", "max_bytes", "partition_max_bytes", "topics", "partitions"):
        print(f"  {name}: {', '.join(field(name)[:8])}")
    sessions = sum(1 for r in rows if r[0].get("session_id", 0) != 0)
    incremental = sum(1 for r in rows if r[0].get("session_epoch", -1) > 0)
    print(f"  requests with a session id: {sessions}, incremental (epoch > 0): {incremental}")
    sizes = [r[1] for r in rows]
    service = [r[2] * 1000 for r in rows]
    transfer = [r[3] * 1000 for r in rows]
    gaps = [r[4] * 1000 for r in rows if r[4] is not None]
    print(
        f"  response bytes: median {statistics.median(sizes):.0f}, min {min(sizes)}, max {max(sizes)},"
        f" total {sum(sizes)}"
    )
    for name, v in (("service ms", service), ("transfer ms", transfer), ("client gap ms", gaps)):
        if v:
            print(
                f"  {name}: median {statistics.median(v):.3f}, p90 {pct(v, 0.9):.3f}, max {max(v):.3f},"
                f" sum {sum(v):.0f}"
            )
    waited = sum(1 for r in rows if r[2] * 1000 >= 0.8 * max(r[0]["max_wait_ms"], 1) and r[0]["max_wait_ms"] > 0)
    print(f"  responses that took >= 80% of max_wait_ms: {waited}")
    empty = sum(1 for r in rows if r[1] < 200)
    print(f"  responses under 200 bytes (no records): {empty}")


if __name__ == "__main__":
    main()
