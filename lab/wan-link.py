#!/usr/bin/env python3
"""User-space WAN link for `podboot lab`: bridges two veth ends with delay, loss and a rate cap, and counts what it carries.

Used where the kernel has no netem qdisc (and modules cannot be loaded), and
whenever the lab asks for a rate cap (its byte counters are this program's).
It runs in the lab's middle "wan" network namespace and copies every Ethernet
frame received on one interface to the other one, after a fixed one-way
delay, dropping a fraction of frames chosen by a seeded PRNG so a run can be
repeated. Written in Python rather than Node because Node can open neither
AF_PACKET sockets nor TUN devices without a native addon.

Why the pieces are as they are:
- AF_PACKET raw sockets bound to each interface see whole frames; frames the
  kernel sends *out* of an interface (including the ones this program writes)
  come back with pkttype PACKET_OUTGOING and are skipped, or they would loop.
- The rate cap works like a router's egress: a frame is serialized once the
  frames before it have been (at --rate bits/s), then spends the delay on the
  wire, so it leaves at max(arrival + delay, previous departure) plus its own
  serialization time. Departures only ever grow, so a FIFO per direction is
  already ordered by due time: no heap, no reordering.
- The queue is bounded (frames and bytes); a full queue drops the frame and
  counts it, like a router's tail drop, so memory can never grow unbounded.
  With a cap the byte bound defaults to max(256 KiB, 2 x the bandwidth-delay
  product): the frames in flight plus a burst, not minutes of backlog.
- Counters per direction: --central/--a is the central side, so a->b is
  "down" (central to rack) and b->a is "up". Bytes are whole Ethernet frames
  as sent on; frames of TCP segments from or to a --count-tcp-port are added
  up per port as well (the lab counts its pods' HTTPS port: the stage2 image).
  They go to stderr as JSON lines and, with --counters-file, into that file,
  replaced atomically about once a second and at exit.
- The program exits by itself after --lifetime seconds (the lab records its
  pid and `podboot lab down` stops it; the lifetime is the backstop if
  nobody does), and on SIGTERM/SIGINT.
- The caller turns offloads off on the veths (ethtool -K … tx off tso off gso
  off sg off gro off): with them on, frames reach this socket with partial
  checksums or as 64 KiB GSO super-frames that cannot be sent on as they are.
"""

import argparse
import collections
import json
import os
import random
import re
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65535
# frames read from one socket per wake-up: keeps one busy direction from starving the other
BURST = 64
UNCAPPED_MAX_BYTES = 32 << 20
CAPPED_MIN_BYTES = 256 << 10
COUNTERS_EVERY = 1.0

RATE_UNITS = {"": 1, "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}


def parse_rate(text):
    """'10mbit', '500kbit', '1gbit', '2.5mbit' or plain bits/s -> bits/s (0: no cap). Decimal prefixes, as tc's."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip().lower())
    if not m or m.group(2) not in RATE_UNITS:
        # tc reads kbps/mbps as bytes per second: refuse the ambiguity rather than guess
        raise argparse.ArgumentTypeError(f"{text!r}: expected a rate in bits/s such as 10mbit, 500kbit, 1gbit or 2000000")
    bps = float(m.group(1)) * RATE_UNITS[m.group(2)]
    if bps != 0 and not (1000 <= bps <= 100 * 10**9):
        raise argparse.ArgumentTypeError(f"{text!r}: a rate must be 0 (no cap) or between 1kbit and 100gbit")
    return int(bps)


def parse_port(text):
    if not text.isdigit() or not (1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a TCP port 1..65535")
    return int(text)


def log(event, **fields):
    fields.update({"time": time.time(), "component": "wan-link", "msg": event})
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


def open_port(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setblocking(False)
    # generous buffers: the delay holds frames here, not in the kernel, but bursts still arrive at once
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        except OSError:
            pass
    return s


def tcp_port_of(frame, ports):
    """The counted port a TCP frame is from or to, else None. Reads header bytes as ints: no slices, no allocation."""
    n = len(frame)
    if n < 34:
        return None
    ethertype = (frame[12] << 8) | frame[13]
    off = 14
    if ethertype == 0x8100:  # one VLAN tag
        if n < 38:
            return None
        ethertype = (frame[16] << 8) | frame[17]
        off = 18
    if ethertype == 0x0800:
        if frame[off + 9] != 6:
            return None
        # a later fragment carries no TCP header; TCP sets DF, so these are rare
        if ((frame[off + 6] & 0x1F) << 8) | frame[off + 7]:
            return None
        l4 = off + ((frame[off] & 0x0F) << 2)
    elif ethertype == 0x86DD:
        # extension headers before TCP are not followed: the lab's traffic has none
        if n < off + 44 or frame[off + 6] != 6:
            return None
        l4 = off + 40
    else:
        return None
    if n < l4 + 4:
        return None
    sport = (frame[l4] << 8) | frame[l4 + 1]
    if sport in ports:
        return sport
    dport = (frame[l4 + 2] << 8) | frame[l4 + 3]
    return dport if dport in ports else None


class Direction:
    """Frames from one interface waiting to be sent out of the other, and what went through."""

    def __init__(self, name, src_if, dst_if, src, dst, delay, loss, rng, rate, max_frames, max_bytes, ports):
        self.name, self.src_if, self.dst_if = name, src_if, dst_if
        self.src, self.dst = src, dst
        self.delay, self.loss, self.rng = delay, loss, rng
        # seconds per byte on the wire; 0: no cap
        self.byte_time = 8.0 / rate if rate else 0.0
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.ports = frozenset(ports)
        self.queue = collections.deque()
        self.queued_bytes = 0
        self.peak_bytes = 0
        self.last_departure = 0.0
        self.frames = self.bytes = 0
        self.received = self.lost = self.full = self.send_errors = 0
        self.port_bytes = {p: 0 for p in self.ports}

    def receive(self, now):
        for _ in range(BURST):
            try:
                frame, addr = self.src.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            self.received += 1
            if self.loss > 0 and self.rng.random() < self.loss:
                self.lost += 1
                continue
            size = len(frame)
            if len(self.queue) >= self.max_frames or self.queued_bytes + size > self.max_bytes:
                self.full += 1
                continue
            due = now + self.delay
            if self.byte_time:
                if self.last_departure > due:
                    due = self.last_departure
                due += size * self.byte_time
                self.last_departure = due
            port = tcp_port_of(frame, self.ports) if self.ports else None
            self.queue.append((due, frame, port))
            self.queued_bytes += size
            if self.queued_bytes > self.peak_bytes:
                self.peak_bytes = self.queued_bytes

    def flush(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, frame, port = self.queue.popleft()
            size = len(frame)
            self.queued_bytes -= size
            try:
                self.dst.send(frame)
            except OSError:
                # the peer's queue is full (or it went away): a real link would drop here too
                self.send_errors += 1
                continue
            self.frames += 1
            self.bytes += size
            if port is not None:
                self.port_bytes[port] += size

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def counters(self):
        return {
            "from": self.src_if,
            "to": self.dst_if,
            "frames": self.frames,
            "bytes": self.bytes,
            "dropped": self.lost + self.full + self.send_errors,
            "received": self.received,
            "lost": self.lost,
            "queueFull": self.full,
            "sendErrors": self.send_errors,
            "queuedBytes": self.queued_bytes,
            "peakQueuedBytes": self.peak_bytes,
            "tcpPorts": {str(p): b for p, b in sorted(self.port_bytes.items())},
        }


def write_counters(path, counters):
    """Readers never see half a file: written beside it, then renamed over it."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(counters, f)
        f.write("\n")
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", "--central", dest="a", required=True, help="the central side: frames from it to --b count as down")
    p.add_argument("--b", "--rack", dest="b", required=True, help="the rack side: frames from it to --a count as up")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added in each direction")
    p.add_argument("--loss", type=float, default=0.0, help="probability 0..1 that a frame is dropped, per direction")
    p.add_argument("--rate", type=parse_rate, default=0, help="cap per direction in bits/s: 10mbit, 500kbit, 1gbit or a number; 0: none")
    p.add_argument("--seed", type=int, default=1, help="PRNG seed for the losses (repeatable runs)")
    p.add_argument("--lifetime", type=float, default=6 * 3600, help="exit after this many seconds")
    p.add_argument("--max-frames", type=int, default=20000, help="queue bound per direction, frames")
    p.add_argument("--max-bytes", type=int, default=None, help="queue bound per direction, bytes (default: 32 MiB uncapped, max(256 KiB, 2 x BDP) capped)")
    p.add_argument("--count-tcp-port", type=parse_port, action="append", default=[], metavar="PORT", help="also count the bytes of TCP frames from or to PORT (repeatable)")
    p.add_argument("--counters-file", help="JSON counters, replaced atomically about once a second and at exit")
    p.add_argument("--stats-every", type=float, default=30.0, help="seconds between counter lines on stderr")
    args = p.parse_args(argv)
    if not (0.0 <= args.loss < 1.0):
        p.error("--loss must be in [0, 1)")
    if args.delay_ms < 0 or args.lifetime <= 0:
        p.error("--delay-ms must be >= 0 and --lifetime > 0")
    if args.max_frames < 1 or (args.max_bytes is not None and args.max_bytes < MAX_FRAME):
        p.error(f"--max-frames must be >= 1 and --max-bytes >= {MAX_FRAME}")

    delay = args.delay_ms / 1000.0
    max_bytes = args.max_bytes
    if max_bytes is None:
        # bandwidth-delay product over the round trip this link adds (twice its one-way delay)
        max_bytes = max(CAPPED_MIN_BYTES, int(2 * args.rate / 8 * 2 * delay)) if args.rate else UNCAPPED_MAX_BYTES

    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sa, sb = open_port(args.a), open_port(args.b)
    ports = sorted(set(args.count_tcp_port))
    # one PRNG per direction, both from the seed: the losses of one direction do not depend on the other's traffic
    down = Direction("down", args.a, args.b, sa, sb, delay, args.loss, random.Random(args.seed * 2 + 1), args.rate, args.max_frames, max_bytes, ports)
    up = Direction("up", args.b, args.a, sb, sa, delay, args.loss, random.Random(args.seed * 2 + 2), args.rate, args.max_frames, max_bytes, ports)
    by_fd = {sa.fileno(): down, sb.fileno(): up}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)

    def counters():
        return {"time": time.time(), "pid": os.getpid(), "rateBps": args.rate, "delayMs": args.delay_ms, "down": down.counters(), "up": up.counters()}

    started = time.monotonic()
    deadline = started + args.lifetime
    next_stats = started + args.stats_every
    next_file = started
    log(
        "wan link up",
        central=args.a,
        rack=args.b,
        delay_ms=args.delay_ms,
        loss=args.loss,
        rate_bps=args.rate,
        max_frames=args.max_frames,
        max_bytes=max_bytes,
        count_tcp_ports=ports,
        seed=args.seed,
        pid=os.getpid(),
    )
    try:
        # Bounded: ends at the lifetime deadline or on a signal.
        while stop["why"] is None:
            now = time.monotonic()
            if now >= deadline:
                stop["why"] = "lifetime"
                break
            if args.counters_file and now >= next_file:
                next_file = now + COUNTERS_EVERY
                write_counters(args.counters_file, counters())
            wait = min(deadline - now, next_file - now if args.counters_file else 1.0, 1.0)
            for d in (down.next_due(), up.next_due()):
                if d is not None and d - now < wait:
                    wait = max(0.0, d - now)
            try:
                ready = poller.poll(wait * 1000.0)
            except InterruptedError:
                ready = []
            now = time.monotonic()
            for fd, _ev in ready:
                by_fd[fd].receive(now)
            down.flush(now)
            up.flush(now)
            if now >= next_stats:
                next_stats = now + args.stats_every
                log("counters", **counters())
    finally:
        final = counters()
        if args.counters_file:
            write_counters(args.counters_file, final)
        log("counters", final=True, **final)
    log("wan link down", reason=stop["why"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
