#!/usr/bin/env python3
"""User-space WAN link for `podboot lab`: bridges two veth ends with delay and loss.

Used where the kernel has no netem qdisc (and modules cannot be loaded). It
runs in the lab's middle "wan" network namespace and copies every Ethernet
frame received on one interface to the other one, after a fixed one-way
delay, dropping a fraction of frames chosen by a seeded PRNG so a run can be
repeated. Written in Python rather than Node because Node can open neither
AF_PACKET sockets nor TUN devices without a native addon.

Why the pieces are as they are:
- AF_PACKET raw sockets bound to each interface see whole frames; frames the
  kernel sends *out* of an interface (including the ones this program writes)
  come back with pkttype PACKET_OUTGOING and are skipped, or they would loop.
- The delay is the same for every frame of a direction, so a FIFO per
  direction is already ordered by due time: no heap, no reordering.
- The queue is bounded (frames and bytes); a full queue drops the frame and
  counts it, like a router's tail drop, so memory can never grow unbounded.
- The program exits by itself after --lifetime seconds (the lab records its
  pid and `podboot lab down` stops it; the lifetime is the backstop if
  nobody does), and on SIGTERM/SIGINT. Counters go to stderr as JSON lines.
- The caller turns offloads off on the veths (ethtool -K … tx off tso off gso
  off sg off gro off): with them on, frames reach this socket with partial
  checksums or as 64 KiB GSO super-frames that cannot be sent on as they are.
"""

import argparse
import collections
import json
import os
import random
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


class Direction:
    """Frames from one interface waiting to be sent out of the other."""

    def __init__(self, name, src, dst, delay, loss, rng, max_frames, max_bytes):
        self.name, self.src, self.dst = name, src, dst
        self.delay, self.loss, self.rng = delay, loss, rng
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.queue = collections.deque()
        self.bytes = 0
        self.stats = {"in": 0, "out": 0, "lost": 0, "full": 0, "send_errors": 0}

    def receive(self, now):
        for _ in range(BURST):
            try:
                frame, addr = self.src.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            self.stats["in"] += 1
            if self.loss > 0 and self.rng.random() < self.loss:
                self.stats["lost"] += 1
                continue
            if len(self.queue) >= self.max_frames or self.bytes + len(frame) > self.max_bytes:
                self.stats["full"] += 1
                continue
            self.queue.append((now + self.delay, frame))
            self.bytes += len(frame)

    def flush(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, frame = self.queue.popleft()
            self.bytes -= len(frame)
            try:
                self.dst.send(frame)
                self.stats["out"] += 1
            except (BlockingIOError, InterruptedError):
                # the peer's queue is full: a real link would drop here too
                self.stats["send_errors"] += 1
            except OSError:
                self.stats["send_errors"] += 1

    def next_due(self):
        return self.queue[0][0] if self.queue else None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="first interface (e.g. the central side)")
    p.add_argument("--b", required=True, help="second interface (e.g. the rack side)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added in each direction")
    p.add_argument("--loss", type=float, default=0.0, help="probability 0..1 that a frame is dropped, per direction")
    p.add_argument("--seed", type=int, default=1, help="PRNG seed for the losses (repeatable runs)")
    p.add_argument("--lifetime", type=float, default=6 * 3600, help="exit after this many seconds")
    p.add_argument("--max-frames", type=int, default=20000, help="queue bound per direction, frames")
    p.add_argument("--max-bytes", type=int, default=32 << 20, help="queue bound per direction, bytes")
    p.add_argument("--stats-every", type=float, default=30.0, help="seconds between counter lines")
    args = p.parse_args(argv)
    if not (0.0 <= args.loss < 1.0):
        p.error("--loss must be in [0, 1)")
    if args.delay_ms < 0 or args.lifetime <= 0:
        p.error("--delay-ms must be >= 0 and --lifetime > 0")

    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sa, sb = open_port(args.a), open_port(args.b)
    delay = args.delay_ms / 1000.0
    # one PRNG per direction, both from the seed: the losses of one direction do not depend on the other's traffic
    ab = Direction(f"{args.a}->{args.b}", sa, sb, delay, args.loss, random.Random(args.seed * 2 + 1), args.max_frames, args.max_bytes)
    ba = Direction(f"{args.b}->{args.a}", sb, sa, delay, args.loss, random.Random(args.seed * 2 + 2), args.max_frames, args.max_bytes)
    by_fd = {sa.fileno(): ab, sb.fileno(): ba}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)

    started = time.monotonic()
    deadline = started + args.lifetime
    next_stats = started + args.stats_every
    log("wan link up", a=args.a, b=args.b, delay_ms=args.delay_ms, loss=args.loss, seed=args.seed, pid=os.getpid())
    # Bounded: ends at the lifetime deadline or on a signal.
    while stop["why"] is None:
        now = time.monotonic()
        if now >= deadline:
            stop["why"] = "lifetime"
            break
        dues = [d for d in (ab.next_due(), ba.next_due()) if d is not None]
        wait = min([deadline - now, 1.0] + [max(0.0, d - now) for d in dues])
        try:
            ready = poller.poll(wait * 1000.0)
        except InterruptedError:
            ready = []
        now = time.monotonic()
        for fd, _ev in ready:
            by_fd[fd].receive(now)
        ab.flush(now)
        ba.flush(now)
        if now >= next_stats:
            next_stats = now + args.stats_every
            log("wan link counters", **{ab.name: ab.stats, ba.name: ba.stats})
    log("wan link down", reason=stop["why"], **{ab.name: ab.stats, ba.name: ba.stats})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
