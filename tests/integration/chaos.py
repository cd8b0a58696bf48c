#!/usr/bin/python3
"""chaos: a soak and chaos driver for dqd (a manual tool, not in make check;
tests/integration/test_chaos.py runs a short version of it).

Producers (SADD, QADD, QPUT, MULTI/EXEC; delays 0-3000 ms; a few bodies
near max_message_bytes) and consumers (SPOP, SPOP count, BSPOP, QRESERVE
[BLOCK] with QACK, QNACK, QEXTEND or an abandoned lease) run against one
dqd while a chaos thread kill -9s workers, the housekeeper, the flusher,
sometimes every process at once (dqd is then started again: recovery), and
sends SIGHUP reloads, and makes workers' commits fail as deadlock victims
(DEBUG DEADLOCK) so that batches run again or command by command.  Nasty
clients may join: half a command then close,
a client that never reads its replies, floods of connections past
maxclients.  Every acknowledged write and every delivery is recorded with
its times; at the end the queues are drained and checked:

  * every acknowledged message delivered: exactly once from the SPOP
    queues (a SPOP whose reply was lost may take its messages with it:
    at most once), at least once from the reliable queues;
  * none delivered before its due time (nor a redelivery before its lease
    or QNACK delay ran out), none after its QACK was answered 1;
  * dead letters after max_deliveries, with the delivery count;
  * bodies intact; no message that was never sent, or refused;
  * SCARD, QSTAT and the drain agree; dqctl verify is clean.

Usage (the build tree's dqd; Debian's python3 for redis-py is not needed):

  tests/integration/chaos.py --dqd ./dqd --dqctl ./dqctl \\
      --durability fsync --duration 300 --port 7301 --dir /var/tmp/chaos1

Exit status 0 when every check passed, 1 otherwise; the summary goes to
stdout, dqd's logs stay in --dir.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dqtest import (children_of, pid_alive, resp_cmd,  # noqa: E402
                    resp_complete, resp_parse, RespError)

MAX_DELIVERIES = 4


def now_ms():
    return time.time() * 1000.0


# -- a minimal RESP client: nothing retried behind our back ---------------

class Conn:
    def __init__(self, port, timeout=15.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.s.settimeout(timeout)
        self.buf = bytearray()

    def send(self, *cmds):
        self.s.sendall(b"".join(resp_cmd(*c) for c in cmds))

    def read(self):
        while True:
            end = resp_complete(self.buf)
            if end is not None:
                frame = bytes(self.buf[:end])
                del self.buf[:end]
                return resp_parse(frame)[0]
            d = self.s.recv(1 << 20)
            if not d:
                raise ConnectionError("closed by the server")
            self.buf += d

    def call(self, *args):
        self.send(args)
        return self.read()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


NET_ERRORS = (OSError, ConnectionError, socket.timeout)


# -- bodies: the uid, then filler derived from it --------------------------

def filler(uid, n):
    seed = hashlib.md5(uid.encode()).hexdigest().encode()
    return (seed * (n // len(seed) + 1))[:n]


def make_body(uid, size):
    head = uid.encode() + b"|"
    return head + filler(uid, max(0, size - len(head)))


def body_uid(body):
    """(uid, intact)."""
    i = body.find(b"|")
    if i < 0:
        return None, False
    uid = body[:i].decode("ascii", "replace")
    return uid, body == make_body(uid, len(body))


# -- the ledger --------------------------------------------------------------

class Msg:
    __slots__ = ("uid", "queue", "kind", "send", "delay", "status", "id",
                 "poison", "size", "retried", "ackrecv")

    def __init__(self, uid, queue, kind, send, delay, poison, size):
        self.uid, self.queue, self.kind = uid, queue, kind
        self.send, self.delay, self.poison = send, delay, poison
        self.status = "sent"    # -> acked | maybe | refused
        self.id = None
        self.size = size
        self.retried = False    # a QPUT sent again: it was replaced
        self.ackrecv = None     # when the enqueue's reply came


class Delivery:
    __slots__ = ("queue", "sent", "recv", "count", "lease", "nack", "id",
                 "dead")

    def __init__(self, queue, sent, recv, count=None, lease=None, id=None):
        self.queue, self.sent, self.recv = queue, sent, recv
        self.count, self.lease, self.id = count, lease, id
        self.nack = None        # (sent, delay) of a QNACK of it
        self.dead = queue.endswith(":dead")


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.msgs = {}
        self.deliv = {}         # uid -> [Delivery]
        self.acked = {}         # uid -> recv time of the first QACK -> 1
        self.cancelled = {}     # uid -> recv time of QCANCEL -> 1, or None
                                # when the reply was lost
        self.dels = {}          # d-queue -> [(DEL sent, DEL recv)]
        self.recent_puts = []   # (queue, id, uid) for the canceller
        self.spop_lost = 0      # messages lost SPOP replies may have taken
        self.problems = []
        self.counts = {}        # op -> n
        self.slow = []          # (op, seconds)
        self.bad_bodies = 0

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 2000:
                self.problems.append(text)

    def count(self, op, n=1):
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + n

    def produced(self, msgs):
        with self.lock:
            for m in msgs:
                self.msgs[m.uid] = m

    def delivered(self, uid, d):
        with self.lock:
            self.deliv.setdefault(uid, []).append(d)


# -- the server ----------------------------------------------------------------

class Server:
    def __init__(self, args):
        self.a = args
        self.dir = args.dir
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "dqd.log")
        self.conf = os.path.join(self.dir, "dqd.conf")
        self.proc = None
        self.port = args.port
        self.starts = 0
        self.lock = threading.Lock()
        self.kinds = {}         # pid -> kind, from the log
        self.log_off = 0

    def write_conf(self):
        a = self.a
        text = ("bind = \"127.0.0.1\";\nport = %d;\nworkers = %d;\n"
                "data_dir = \"%s\";\ndurability = \"%s\";\n"
                "log_file = \"%s\";\nlog_level = \"info\";\n"
                "max_deliveries = %d;\nmaxclients = %d;\n"
                "wheel_bucket_ms = %d;\ncheckpoint_interval_s = %d;\n"
                "flush_interval_ms = %d;\nmax_message_bytes = %d;\n"
                "enable_debug_command = true;\n"
                # queues that go idle are forgotten under the faults too
                "empty_queue_ttl_s = 1;\n"
                % (self.port, a.workers, self.data, a.durability, self.log,
                   MAX_DELIVERIES, a.maxclients, a.wheel_ms,
                   a.checkpoint_s, a.flush_ms, a.max_bytes))
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=60):
        self.write_conf()
        err = open(os.path.join(self.dir, "dqd.stderr"), "ab")
        self.proc = subprocess.Popen([self.a.dqd, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=err,
                                     stderr=err)
        err.close()
        self.starts += 1
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("dqd exited %s at start" %
                                   self.proc.returncode)
            if ping(self.port, 1.0):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError("dqd did not answer within %d s" % timeout)

    def children(self):
        """{pid: kind} of the master's live children, from its log."""
        # Read on from where the last call stopped: the log grows to
        # megabytes, and reading it all in a loop starves every thread.
        kinds = self.kinds
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_off)
                text = f.read()
        except OSError:
            text = b""
        end = text.rfind(b"\n") + 1
        self.log_off += end
        for m in re.finditer(rb"(worker|housekeeper|flusher) \d+ "
                             rb"started, pid (\d+)", text[:end]):
            kinds[int(m.group(2))] = m.group(1).decode()
        live = {}
        for pid in children_of(self.proc.pid):
            live[pid] = kinds.get(pid, "?")
        return live

    def kill_all(self):
        pids = [self.proc.pid] + list(children_of(self.proc.pid))
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(20)
        deadline = time.monotonic() + 20
        while any(pid_alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise RuntimeError("processes survived kill -9: %r" % pids)
            time.sleep(0.02)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill_all()
            return "hung"


def ping(port, timeout):
    try:
        c = Conn(port, timeout)
        try:
            return c.call("PING") == "PONG"
        finally:
            c.close()
    except NET_ERRORS:
        return False


# -- the load -------------------------------------------------------------------

class Load:
    def __init__(self, args, srv, led):
        self.a, self.srv, self.led = args, srv, led
        self.stop = threading.Event()
        self.paused = threading.Event()     # chaos: the server is down
        self.squeues = ["s:%d" % i for i in range(args.queues)]
        self.rqueues = ["r:%d" % i for i in range(args.queues)]
        self.threads = []

    def connect(self, rnd):
        while not self.stop.is_set():
            try:
                return Conn(self.srv.port)
            except NET_ERRORS:
                time.sleep(0.05 + rnd.random() * 0.05)
        return None

    def timed(self, op, conn, *args):
        t0 = time.monotonic()
        try:
            v = conn.call(*args)
        except socket.timeout:
            # A kill closes connections, it does not leave them silent:
            # a request unanswered for the whole timeout was lost (as
            # when a batch lost 16 deadlocks and was never run again).
            self.led.problem("%s: no reply in %.0f s on an open "
                             "connection" % (op, time.monotonic() - t0))
            raise
        dt = time.monotonic() - t0
        if dt > 5:
            with self.led.lock:
                self.led.slow.append((op, round(dt, 2)))
        return v

    # producers ---------------------------------------------------------
    def body_size(self, rnd, over=False):
        x = rnd.random()
        if over and x < self.a.big_ratio / 4:
            return self.a.max_bytes + 1     # refused
        if x < self.a.big_ratio:
            return self.a.max_bytes - rnd.randrange(0, 64)
        if x < 0.05:
            return rnd.randrange(100, 20000)
        return rnd.randrange(20, 120)

    def new_msgs(self, rnd, tid, seqno, kind, queue, n, over=False):
        out = []
        for _ in range(n):
            seqno[0] += 1
            poison = kind == "r" and rnd.random() < 0.03
            uid = "%s%s%d-%d" % (kind, "P" if poison else "", tid, seqno[0])
            delay = 0 if rnd.random() < 0.3 else rnd.randrange(0, 3001)
            out.append(Msg(uid, queue, kind, 0, delay, poison,
                           self.body_size(rnd, over)))
        return out

    def producer(self, tid):
        rnd = random.Random(self.a.seed * 1000 + tid)
        led = self.led
        seqno = [0]
        conn = None
        while not self.stop.is_set():
            conn = conn or self.connect(rnd)
            if conn is None:
                break
            kind = "s" if rnd.random() < 0.5 else "r"
            queue = rnd.choice(self.squeues if kind == "s" else
                               self.rqueues)
            x = rnd.random()
            try:
                if x < 0.12:
                    op = "multi"
                    self.produce_multi(rnd, tid, seqno, conn, kind, queue)
                elif kind == "r" and x < 0.45:
                    op = "qput"
                    self.produce_qput(rnd, tid, seqno, conn, queue)
                else:
                    op = "sadd" if kind == "s" and x < 0.8 else "qadd"
                    self.produce_add(rnd, tid, seqno, conn, op, queue,
                                     kind)
            except NET_ERRORS:
                conn.close()
                conn = None
                led.count("producer_reconnects")
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def mark(self, msgs, status):
        with self.led.lock:
            for m in msgs:
                m.status = status

    def produce_add(self, rnd, tid, seqno, conn, op, queue, kind):
        led = self.led
        msgs = self.new_msgs(rnd, tid, seqno, kind, queue,
                             rnd.choice((1, 1, 1, 2, 5)), over=True)
        args = [op.upper(), queue]
        for m in msgs:
            args += [make_body(m.uid, m.size), m.delay]
        t = now_ms()
        for m in msgs:
            m.send = t
        led.produced(msgs)
        try:
            v = self.timed(op, conn, *args)
        except NET_ERRORS:
            self.mark(msgs, "maybe")
            raise
        if isinstance(v, RespError):
            self.mark(msgs, "refused")
            led.count(op + "_error")
            if not any(m.size > self.a.max_bytes for m in msgs) and \
                    "max number of clients" not in v:
                led.problem("%s: %s" % (op, v))
            if "max number of clients" in v:
                raise ConnectionError(v)
            return
        if op == "sadd":
            ok = v == len(msgs)
        else:
            ok = isinstance(v, list) and len(v) == len(msgs)
        if not ok:
            led.problem("%s: unexpected reply %r" % (op, v))
            self.mark(msgs, "maybe")
            return
        with led.lock:
            for i, m in enumerate(msgs):
                m.status = "acked"
                if op == "qadd":
                    m.id = v[i]
        led.count(op, len(msgs))

    def produce_qput(self, rnd, tid, seqno, conn, queue):
        led = self.led
        m = self.new_msgs(rnd, tid, seqno, "r", queue, 1)[0]
        m.id = ("id-" + m.uid).encode()
        m.send = now_ms()
        led.produced([m])
        args = ("QPUT", queue, m.id, make_body(m.uid, m.size), m.delay)
        try:
            v = self.timed("qput", conn, *args)
        except NET_ERRORS:
            self.mark([m], "maybe")
            # Idempotent: the same QPUT again on a new connection.
            conn.close()
            c2 = self.connect(rnd)
            if c2 is None:
                raise
            try:
                v = self.timed("qput", c2, *args)
            finally:
                c2.close()
            m.retried = True
            if v in (0, 1):
                self.mark([m], "acked")
                led.count("qput_retried")
            raise ConnectionError("retried")
        if v == 1:
            self.mark([m], "acked")
            led.count("qput")
            with led.lock:
                led.recent_puts.append((queue, m.id, m.uid))
                if len(led.recent_puts) > 2000:
                    del led.recent_puts[:1000]
        elif isinstance(v, RespError):
            self.mark([m], "refused")
            if "max number of clients" in v:
                raise ConnectionError(v)
        else:
            led.problem("qput: unexpected reply %r" % (v,))
            self.mark([m], "maybe")

    def produce_multi(self, rnd, tid, seqno, conn, kind, queue):
        led = self.led
        cmds, groups = [("MULTI",)], []
        for _ in range(rnd.randrange(1, 4)):
            msgs = self.new_msgs(rnd, tid, seqno, kind, queue,
                                 rnd.choice((1, 2)))
            op = "SADD" if kind == "s" else "QADD"
            args = [op, queue]
            for m in msgs:
                args += [make_body(m.uid, m.size), m.delay]
            cmds.append(tuple(args))
            groups.append((op, msgs))
        cmds.append(("EXEC",))
        allm = [m for _, ms in groups for m in ms]
        t = now_ms()
        for m in allm:
            m.send = t
        led.produced(allm)
        try:
            conn.send(*cmds)
            replies = [conn.read() for _ in cmds]
        except NET_ERRORS:
            self.mark(allm, "maybe")
            raise
        ex = replies[-1]
        if not isinstance(ex, list) or len(ex) != len(groups):
            if any(isinstance(r, RespError) and "max number" in r
                   for r in replies):
                self.mark(allm, "refused")
                raise ConnectionError("maxclients")
            led.problem("EXEC: unexpected replies %r" % (replies,))
            self.mark(allm, "maybe")
            return
        with led.lock:
            for (op, msgs), r in zip(groups, ex):
                if op == "SADD" and r != len(msgs) or (
                        op == "QADD" and (not isinstance(r, list) or
                                          len(r) != len(msgs))):
                    self.led.problems.append("EXEC %s reply %r" % (op, r))
                    continue
                for i, m in enumerate(msgs):
                    m.status = "acked"
                    if op == "QADD":
                        m.id = r[i]
        led.count("multi")

    # consumers ---------------------------------------------------------
    def got_body(self, body, d):
        uid, intact = body_uid(body)
        if not intact:
            self.led.problem("damaged body (%d bytes) %r..." %
                             (len(body), body[:60]))
            with self.led.lock:
                self.led.bad_bodies += 1
            return None
        self.led.delivered(uid, d)
        return uid

    def spop_consumer(self, tid):
        rnd = random.Random(self.a.seed * 1000 + 500 + tid)
        led, conn = self.led, None
        while not self.stop.is_set():
            conn = conn or self.connect(rnd)
            if conn is None:
                break
            x = rnd.random()
            q = rnd.choice(self.squeues)
            if x < 0.4:
                args, most = ("SPOP", q), 1
            elif x < 0.75:
                n = rnd.randrange(1, 20)
                args, most = ("SPOP", q, n), n
            else:
                qs = rnd.sample(self.squeues, min(3, len(self.squeues)))
                args, most = ("BSPOP",) + tuple(qs) + ("0.3",), 1
            sent = now_ms()
            try:
                v = self.timed(args[0].lower(), conn, *args)
            except NET_ERRORS:
                with led.lock:
                    led.spop_lost += most
                conn.close()
                conn = None
                led.count("consumer_reconnects")
                time.sleep(0.02)
                continue
            recv = now_ms()
            if isinstance(v, RespError):
                if "max number of clients" in v:
                    conn.close()
                    conn = None
                    continue
                led.problem("%s: %s" % (args[0], v))
                continue
            if args[0] == "BSPOP":
                bodies = [] if v is None else [(v[0].decode(), v[1])]
            elif len(args) == 2:
                bodies = [] if v is None else [(q, v)]
            else:
                bodies = [(q, b) for b in v]
            for qq, b in bodies:
                self.got_body(b, Delivery(qq, sent, recv))
            led.count("s_delivered", len(bodies))
        if conn is not None:
            conn.close()

    def reserve_consumer(self, tid):
        rnd = random.Random(self.a.seed * 1000 + 700 + tid)
        led, conn = self.led, None
        while not self.stop.is_set():
            conn = conn or self.connect(rnd)
            if conn is None:
                break
            q = rnd.choice(self.rqueues)
            if rnd.random() < 0.15:
                q += ":dead"
            lease = rnd.randrange(300, 3001)
            args = ["QRESERVE", q, rnd.randrange(1, 10), lease]
            if rnd.random() < 0.3:
                args += ["BLOCK", rnd.randrange(50, 500)]
            sent = now_ms()
            try:
                v = self.timed("qreserve", conn, *args)
                recv = now_ms()
                if isinstance(v, RespError):
                    if "max number of clients" in v:
                        raise ConnectionError(v)
                    led.problem("QRESERVE: %s" % v)
                    continue
                self.handle_reserved(rnd, conn, q, v, sent, recv, lease)
            except NET_ERRORS:
                conn.close()
                conn = None
                led.count("consumer_reconnects")
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def handle_reserved(self, rnd, conn, q, items, sent, recv, lease):
        led = self.led
        acks = []
        for it in items:
            mid, body, count = it
            d = Delivery(q, sent, recv, count, lease, mid)
            uid = self.got_body(body, d)
            if uid is None:
                continue
            led.count("r_delivered")
            poison = uid.startswith("rP")
            x = rnd.random()
            if d.dead:
                acks.append((uid, mid, d))
            elif poison or x < 0.1:
                delay = rnd.randrange(0, 500)
                d.nack = (now_ms(), delay, None)
                v = conn.call("QNACK", q, mid, delay)
                d.nack = (d.nack[0], delay, v)
                if v not in (0, 1):
                    led.problem("QNACK reply %r" % (v,))
                led.count("qnack")
            elif x < 0.18:
                led.count("abandoned")      # its lease runs out
            elif x < 0.22:
                v = conn.call("QEXTEND", q, mid, lease)
                if v not in (0, 1):
                    led.problem("QEXTEND reply %r" % (v,))
                acks.append((uid, mid, d))
            else:
                acks.append((uid, mid, d))
        if not acks:
            return
        conn.send(*[("QACK", q, mid) for _, mid, _ in acks])
        for uid, mid, d in acks:
            v = conn.read()
            if v == 1:
                t = now_ms()
                with led.lock:
                    led.acked.setdefault(uid, t)
                led.count("qack")
            elif v != 0:
                led.problem("QACK reply %r" % (v,))

    # DEL and QCANCEL -----------------------------------------------------
    def deleter(self, tid):
        """Fills the queues d:0..2, takes from them, and deletes them now
        and then: nothing acknowledged before a DEL was sent may come out
        after its reply."""
        rnd = random.Random(self.a.seed * 1000 + 800 + tid)
        led, conn, n = self.led, None, 0
        while not self.stop.is_set():
            conn = conn or self.connect(rnd)
            if conn is None:
                break
            q = "d:%d" % rnd.randrange(3)
            x = rnd.random()
            try:
                if x < 0.6:
                    n += 1
                    m = Msg("d%d-%d" % (tid, n), q, "d", now_ms(),
                            rnd.choice((0, 0, 50, 1500)), False, 50)
                    led.produced([m])
                    v = conn.call("SADD", q, make_body(m.uid, m.size),
                                  m.delay)
                    if v == 1:
                        with led.lock:
                            m.status, m.ackrecv = "acked", now_ms()
                    elif isinstance(v, RespError) and "max number" in v:
                        self.mark([m], "refused")
                        raise ConnectionError(v)
                    else:
                        led.problem("SADD %s: %r" % (q, v))
                elif x < 0.95:
                    sent = now_ms()
                    v = conn.call("SPOP", q, 5)
                    recv = now_ms()
                    if isinstance(v, RespError):
                        if "max number" in v:
                            raise ConnectionError(v)
                        led.problem("SPOP %s: %s" % (q, v))
                        continue
                    for b in v:
                        self.got_body(b, Delivery(q, sent, recv))
                else:
                    sent = now_ms()
                    v = conn.call("DEL", q)
                    if v in (0, 1):
                        with led.lock:
                            led.dels.setdefault(q, []).append(
                                (sent, now_ms()))
                        led.count("del")
                    elif isinstance(v, RespError) and "max number" in v:
                        raise ConnectionError(v)
                    else:
                        led.problem("DEL %s: %r" % (q, v))
            except NET_ERRORS:
                conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def canceller(self, tid):
        """QCANCELs messages QPUT put: none may come out after the reply
        said 1."""
        rnd = random.Random(self.a.seed * 1000 + 850 + tid)
        led, conn = self.led, None
        while not self.stop.is_set():
            time.sleep(0.02)
            with led.lock:
                if not led.recent_puts:
                    continue
                q, mid, uid = led.recent_puts.pop(
                    rnd.randrange(len(led.recent_puts)))
            conn = conn or self.connect(rnd)
            if conn is None:
                break
            try:
                v = conn.call("QCANCEL", q, mid)
            except NET_ERRORS:
                with led.lock:
                    led.cancelled.setdefault(uid, None)
                conn.close()
                conn = None
                continue
            if v == 1:
                with led.lock:
                    led.cancelled[uid] = now_ms()
                led.count("qcancel")
            elif isinstance(v, RespError) and "max number" in v:
                conn.close()
                conn = None
            elif v != 0:
                led.problem("QCANCEL reply %r" % (v,))
        if conn is not None:
            conn.close()

    # nasty clients -------------------------------------------------------
    def half_commands(self, tid):
        rnd = random.Random(self.a.seed * 1000 + 900 + tid)
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.srv.port),
                                             timeout=2)
                full = resp_cmd("SADD", "junk:half", "x" * rnd.randrange(
                    1, 5000), "0")
                cut = rnd.randrange(1, len(full))
                s.sendall(full[:cut])
                if rnd.random() < 0.3:
                    time.sleep(rnd.random() * 0.2)
                s.close()
                self.led.count("half_commands")
            except NET_ERRORS:
                time.sleep(0.05)
            time.sleep(0.01)

    def non_reader(self, tid):
        """Pipelines commands and never reads a reply, reconnecting when
        the server closes it."""
        rnd = random.Random(self.a.seed * 1000 + 950 + tid)
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.srv.port),
                                             timeout=2)
                s.setblocking(False)
                chunk = b"".join(resp_cmd(*c) for c in [
                    ("SADD", "junk:nr", "y" * 100, "0"),
                    ("SPOP", "junk:nr", "5"),
                    ("QPEEK", "s:0", "50")] * 50)
                while not self.stop.is_set():
                    try:
                        s.send(chunk)
                        self.led.count("non_reader_bytes", len(chunk))
                    except BlockingIOError:
                        time.sleep(0.2)
                    except OSError:
                        break
                s.close()
            except NET_ERRORS:
                time.sleep(0.1)

    def flood(self, n):
        """n connections at once (past maxclients), held a moment."""
        socks, refused = [], 0
        for _ in range(n):
            try:
                socks.append(socket.create_connection(
                    ("127.0.0.1", self.srv.port), timeout=2))
            except NET_ERRORS:
                refused += 1
        time.sleep(1.0)
        for s in socks:
            s.close()
        self.led.count("flood_connections", len(socks))

    def start(self):
        a = self.a
        spec = ([(self.producer, i) for i in range(a.producers)] +
                [(self.spop_consumer, i) for i in range(a.consumers)] +
                [(self.reserve_consumer, i) for i in range(a.consumers)])
        spec += [(self.deleter, 0), (self.canceller, 0)]
        if a.nasty:
            spec += [(self.half_commands, 0), (self.non_reader, 0)]
        for fn, i in spec:
            t = threading.Thread(target=fn, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
            if t.is_alive():
                self.led.problem("a client thread did not stop")


# -- chaos -------------------------------------------------------------------

class Chaos:
    def __init__(self, args, srv, led, load):
        self.a, self.srv, self.led, self.load = args, srv, led, load
        self.stop = threading.Event()
        self.events = []
        self.rnd = random.Random(args.seed)
        self.worst_outage = 0.0

    def outage(self, what, limit):
        """Seconds until a new connection gets PONG."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            if ping(self.srv.port, 1.0):
                dt = time.monotonic() - t0
                if dt > limit:
                    self.led.problem("not serving %.2f s after %s"
                                     % (dt, what))
                self.worst_outage = max(self.worst_outage, dt)
                return dt
            time.sleep(0.02)
        self.led.problem("not serving 30 s after %s: master hung?" % what)
        return None

    def pick(self, kind):
        kids = [p for p, k in self.srv.children().items() if k == kind]
        return self.rnd.choice(kids) if kids else None

    def act(self):
        a, rnd = self.a, self.rnd
        x = rnd.random()
        if x < 0.37:
            what = "worker"
        elif x < 0.45:
            what = "newborn"
        elif x < 0.57:
            what = "housekeeper"
        elif x < 0.69:
            what = "flusher" if a.durability == "fsync" or a.flip \
                else "worker"
        elif x < 0.79:
            what = "reload"
        elif x < 0.79 + a.crash_ratio:
            what = "everything"
        elif x < 0.79 + a.crash_ratio + a.deadlock_ratio:
            what = "deadlock"
        elif a.nasty and x < 0.97:
            what = "flood"
        else:
            what = "nothing"
        if a.only:
            what = a.only
        if what in ("worker", "housekeeper", "flusher"):
            pid = self.pick(what)
            if pid is None:
                return
            # Sometimes twice in a row: a death during failchk.
            os.kill(pid, signal.SIGKILL)
            self.led.count("kill_" + what)
            if what == "worker" and rnd.random() < 0.15:
                time.sleep(rnd.random() * 0.05)
                pid2 = self.pick("worker")
                if pid2 is not None and pid2 != pid:
                    os.kill(pid2, signal.SIGKILL)
                    self.led.count("kill_worker")
            self.outage("kill -9 of a %s" % what, a.outage_limit)
        elif what == "newborn":
            # A worker killed as it starts: inside DB_ENV->open, the
            # first registration in the thread table, DB->open...
            old = set(self.srv.children())
            pid = self.pick("worker")
            if pid is None:
                return
            os.kill(pid, signal.SIGKILL)
            self.led.count("kill_worker")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                new = [p for p in children_of(self.srv.proc.pid)
                       if p not in old]
                if new:
                    new = [p for p, k in self.srv.children().items()
                           if k == "worker" and p in new]
                if new:
                    time.sleep(rnd.random() * 0.03)
                    os.kill(new[0], signal.SIGKILL)
                    self.led.count("kill_newborn")
                    break
                time.sleep(0.003)
            self.outage("kill -9 of a worker as it started",
                        a.outage_limit)
        elif what == "reload":
            if a.flip:
                a.durability = "write" if a.durability == "fsync" \
                    else "fsync"
                self.srv.write_conf()
            os.kill(self.srv.proc.pid, signal.SIGHUP)
            self.led.count("reload")
            self.outage("SIGHUP", a.outage_limit)
        elif what == "master" or (what == "everything" and
                                  rnd.random() < 0.3):
            # The children follow (PR_SET_PDEATHSIG: SIGTERM, a clean
            # stop); the next dqd waits for the data directory's lock.
            kids = children_of(self.srv.proc.pid)
            os.kill(self.srv.proc.pid, signal.SIGKILL)
            self.srv.proc.wait(20)
            self.led.count("kill_master")
            deadline = time.monotonic() + 30
            while any(pid_alive(p) for p in kids):
                if time.monotonic() > deadline:
                    self.led.problem("children of a killed master still "
                                     "alive after 30 s")
                    break
                time.sleep(0.05)
            took = self.srv.start()
            self.led.count("restarts")
            self.events.append("restart after the master took %.2f s"
                               % took)
        elif what == "everything":
            self.srv.kill_all()
            self.led.count("kill_everything")
            time.sleep(rnd.random() * 0.5)
            took = self.srv.start()
            self.led.count("restarts")
            self.events.append("restart took %.2f s" % took)
        elif what == "flood":
            self.load.flood(a.maxclients + 200)
        elif what == "deadlock":
            self.deadlocks()

    def deadlocks(self):
        """DEBUG DEADLOCK on the workers that new connections reach: their
        next commits fail as deadlock victims, up to 40 in a row, so that
        batches are run again and, past 16, run one command at a time."""
        for _ in range(self.a.workers):
            try:
                c = Conn(self.srv.port, timeout=5)
            except OSError:
                return
            try:
                n = self.rnd.randint(1, 40)
                if c.call("DEBUG", "DEADLOCK", str(n)) != "OK":
                    self.led.problem("DEBUG DEADLOCK %d refused" % n)
                    return
                self.led.count("deadlocks_injected", n)
            except OSError:
                pass                    # a worker killed meanwhile
            finally:
                c.close()

    def run(self):
        while not self.stop.wait(self.rnd.uniform(self.a.chaos_min,
                                                  self.a.chaos_max)):
            try:
                self.act()
            except Exception as e:      # the driver must go on
                self.led.problem("chaos: %r" % (e,))
                if self.srv.proc.poll() is not None:
                    self.led.problem("dqd exited %s" %
                                     self.srv.proc.returncode)
                    try:
                        self.srv.start()
                    except Exception as e2:
                        self.led.problem("restart failed: %r" % (e2,))
                        return


# -- the end: drain and check --------------------------------------------------

def qstat(c, q):
    r = c.call("QSTAT", q)
    if isinstance(r, RespError):
        raise RuntimeError("QSTAT %s: %s" % (q, r))
    return {r[i].decode(): int(r[i + 1]) for i in range(0, len(r), 2)}


def drain(args, srv, led, load):
    """Waits for delays and leases, checks the counts, takes everything."""
    time.sleep(3.6)     # delays (3 s), leases (3 s) and QNACK (0.5 s)
    c = Conn(srv.port, 60)
    # Every client of the load is gone: this one is all that is left
    # (maxclients counts on the figure).
    for _ in range(100):
        info = c.call("INFO", "clients").decode()
        n = int(re.search(r"connected_clients:(-?\d+)", info).group(1))
        if n == 1:
            break
        time.sleep(0.05)
    else:
        led.problem("INFO connected_clients %d with one client left" % n)
    queues = [x.decode() for x in c.call("KEYS", "*")]
    queues = [q for q in queues if not q.startswith("junk:")]
    before, taken = {}, {}
    for q in sorted(queues):
        st = qstat(c, q)
        n = c.call("SCARD", q)
        before[q] = n
        if st["messages"] != n:
            led.problem("%s: SCARD %d, QSTAT messages %d" %
                        (q, n, st["messages"]))
        if st["ready"] + st["delayed"] + st["reserved"] != st["messages"]:
            led.problem("%s: QSTAT %r does not add up" % (q, st))
        if st["delayed"] != 0 or st["reserved"] != 0:
            led.problem("%s: still delayed/reserved after the wait: %r"
                        % (q, st))
    for q in sorted(queues):
        got = 0
        while True:
            sent = now_ms()
            if q.startswith("s:") or q.startswith("d:"):
                v = c.call("SPOP", q, 500)
                recv = now_ms()
                for b in v:
                    load.got_body(b, Delivery(q, sent, recv))
                got += len(v)
                if not v:
                    break
            else:
                v = c.call("QRESERVE", q, 500, 60000)
                recv = now_ms()
                if isinstance(v, RespError):
                    led.problem("drain QRESERVE %s: %s" % (q, v))
                    break
                if not v:
                    break
                for mid, body, count in v:
                    load.got_body(body, Delivery(q, sent, recv, count,
                                                 60000, mid))
                c.send(*[("QACK", q, mid) for mid, _, _ in v])
                for mid, body, _ in v:
                    r = c.read()
                    if r == 1:
                        uid, _ = body_uid(body)
                        with led.lock:
                            led.acked.setdefault(uid, now_ms())
                    else:
                        led.problem("drain QACK %s %r: %r" % (q, mid, r))
                got += len(v)
        taken[q] = got
        n = c.call("SCARD", q)
        st = qstat(c, q)
        if n != 0 or st["messages"] != 0:
            led.problem("%s: SCARD %d, QSTAT %r after the drain" %
                        (q, n, st))
        if got != before[q]:
            led.problem("%s: SCARD said %d, the drain took %d" %
                        (q, before[q], got))
    left = c.call("DBSIZE")
    c.close()
    return sum(taken.values()), left


def check(args, led):
    """Every rule of the contract against the ledger."""
    p = led.problem
    acked_s = missing_s = missing_r = 0
    dup_s = early = after_ack = 0
    for uid, m in led.msgs.items():
        ds = led.deliv.get(uid, [])
        if m.status == "refused" and ds:
            p("%s was refused (%s) but delivered" % (uid, m.queue))
        if m.kind == "d":
            check_deleted(led, uid, m, ds)
            continue
        if m.status == "acked" and not ds and uid not in led.cancelled:
            if m.kind == "s":
                missing_s += 1
            else:
                missing_r += 1
                if missing_r <= 20:
                    p("acknowledged %s (%s, sent %.0f, delay %d) never "
                      "delivered" % (uid, m.queue, m.send, m.delay))
        if m.kind == "s":
            acked_s += m.status == "acked"
            if len(ds) > 1:
                dup_s += 1
                if dup_s <= 20:
                    p("SPOP queue message %s delivered %d times: %s" % (
                        uid, len(ds), [(d.queue, int(d.sent), int(d.recv))
                                       for d in ds]))
        for d in ds:
            # due >= the enqueue's arrival (ms, truncated) + delay
            if d.recv < int(m.send) + m.delay - 1:
                early += 1
                if early <= 20:
                    p("%s delivered %.0f ms early (sent %.0f, delay %d, "
                      "delivered %.0f)" % (uid, int(m.send) + m.delay -
                                           d.recv, m.send, m.delay,
                                           d.recv))
        if m.kind == "r" and ds:
            after_ack += check_redeliveries(led, uid, m, ds)
    if missing_s > led.spop_lost:
        p("%d acknowledged SPOP-queue messages never delivered; lost SPOP "
          "replies explain at most %d" % (missing_s, led.spop_lost))
    return dict(acked_s=acked_s, missing_s=missing_s, dup_s=dup_s,
                missing_r=missing_r, early=early, after_ack=after_ack)


def check_deleted(led, uid, m, ds):
    """A d-queue message: once; never after a DEL sent after its SADD was
    answered; otherwise delivered unless a DEL may have taken it."""
    p = led.problem
    if len(ds) > 1:
        p("%s delivered %d times" % (uid, len(ds)))
    dels = led.dels.get(m.queue, [])
    for d in ds:
        for sent, recv in dels:
            if m.ackrecv is not None and m.ackrecv < sent and d.sent > recv:
                p("%s (%s) delivered at %.0f after a DEL sent at %.0f, "
                  "answered at %.0f" % (uid, m.queue, d.recv, sent, recv))
                break
        if d.recv < int(m.send) + m.delay - 1:
            p("%s delivered early" % uid)


def check_redeliveries(led, uid, m, ds):
    """A reliable message's deliveries, in the server's order: the
    delivery count goes up by one at each (more when a reply was lost)."""
    p = led.problem
    if m.retried:       # a QPUT sent again replaced it: counts restart
        return 0
    bad = 0
    ack = led.acked.get(uid)
    ds = sorted(ds, key=lambda d: (d.dead, d.count or 0))
    prev = None
    dead_seen = False
    cancel = led.cancelled.get(uid)
    for d in ds:
        if cancel is not None and d.sent > cancel:
            p("%s delivered (QRESERVE sent %.0f) after QCANCEL answered 1 "
              "at %.0f" % (uid, d.sent, cancel))
        if m.id is not None and d.id is not None and d.id != m.id:
            p("%s delivered with id %r, enqueued with %r" % (uid, d.id,
                                                              m.id))
        if ack is not None and d.sent > ack:
            bad += 1
            p("%s delivered (QRESERVE sent %.0f) after its QACK was "
              "answered 1 at %.0f" % (uid, d.sent, ack))
        if d.dead:
            # Higher when the reply of the first was lost (a kill).
            if not dead_seen and (d.count is None or
                                  d.count < MAX_DELIVERIES + 1):
                p("%s: first delivery from the dead queue with count %r"
                  % (uid, d.count))
            dead_seen = True
        elif d.count is not None and d.count > MAX_DELIVERIES:
            p("%s delivered %d times from %s (max_deliveries %d)"
              % (uid, d.count, d.queue, MAX_DELIVERIES))
        if prev is not None and prev.dead == d.dead:
            if d.count == prev.count:
                p("%s: two deliveries with count %r" % (uid, d.count))
            bound = int(prev.sent) + prev.lease
            if prev.nack is not None:
                bound = min(bound, int(prev.nack[0]) + prev.nack[1])
            if d.recv < bound - 1:
                p("%s redelivered %.0f ms before its lease or QNACK "
                  "delay ended" % (uid, bound - d.recv))
        prev = d
    last = [d for d in ds if not d.dead and d.count == MAX_DELIVERIES and
            d.nack is not None and d.nack[2] == 1]
    if last and not dead_seen:
        p("%s given back (QNACK 1) after delivery %d: not a dead letter"
          % (uid, MAX_DELIVERIES))
    return bad


def log_summary(path):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    pats = {
        "failchk_ok": r"failchk: the environment is consistent",
        "pool_restarts": r"restarting every process after recovery",
        "recoveries": r"running recovery",
        "bdb_messages": r"bdb: ",
        "panics": r"needs recovery",
        "deadlock_storms": r"deadlocked \d+ times",
        "storage_errors": r"storage error",
    }
    return {k: len(re.findall(v, text)) for k, v in pats.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dqd", default=os.environ.get("DQD") or "./dqd")
    ap.add_argument("--dqctl", default=os.environ.get("DQCTL") or "./dqctl")
    ap.add_argument("--dir", default="/var/tmp/dqd-chaos")
    ap.add_argument("--port", type=int, default=7300)
    ap.add_argument("--durability", default="fsync",
                    choices=("fsync", "write"))
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--consumers", type=int, default=3)
    ap.add_argument("--queues", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chaos-min", type=float, default=1.0)
    ap.add_argument("--chaos-max", type=float, default=4.0)
    ap.add_argument("--crash-ratio", type=float, default=0.08)
    ap.add_argument("--no-chaos", action="store_true")
    ap.add_argument("--only", help="one chaos action: worker, newborn, "
                    "housekeeper, flusher, reload, everything, flood, "
                    "deadlock")
    ap.add_argument("--deadlock-ratio", type=float, default=0.08,
                    help="share of chaos actions that inject deadlocks "
                    "(DEBUG DEADLOCK) into the workers")
    ap.add_argument("--nasty", action="store_true",
                    help="half commands, a non-reader, connection floods")
    ap.add_argument("--big-ratio", type=float, default=0.002)
    ap.add_argument("--max-bytes", type=int, default=1048576)
    ap.add_argument("--maxclients", type=int, default=1000)
    ap.add_argument("--wheel-ms", type=int, default=500)
    ap.add_argument("--checkpoint-s", type=int, default=3)
    ap.add_argument("--flush-ms", type=int, default=200)
    ap.add_argument("--flip", action="store_true",
                    help="each reload switches durability fsync <-> write")
    ap.add_argument("--outage-limit", type=float, default=2.0,
                    help="seconds without service after a kill that "
                    "count as a problem (SPEC 3: 2)")
    ap.add_argument("--keep", action="store_true", help="keep --dir")
    a = ap.parse_args(argv)

    if os.path.exists(a.dir):
        shutil.rmtree(a.dir)
    os.makedirs(a.dir)
    led = Ledger()
    srv = Server(a)
    srv.start()
    load = Load(a, srv, led)
    chaos = Chaos(a, srv, led, load)
    t0 = time.monotonic()
    load.start()
    ct = threading.Thread(target=chaos.run, daemon=True)
    if not a.no_chaos:
        ct.start()
    try:
        while time.monotonic() - t0 < a.duration:
            time.sleep(1)
            if a.duration >= 60 and int(time.monotonic() - t0) % 30 == 0:
                print("%4.0f s: %r" % (time.monotonic() - t0,
                                       dict(led.counts)), flush=True)
    finally:
        chaos.stop.set()
        if ct.is_alive():
            ct.join(120)
    load.join()
    if srv.proc.poll() is not None:
        led.problem("dqd was not running at the end (%s)"
                    % srv.proc.returncode)
        srv.start()
    if not ping(a.port, 5):
        led.problem("dqd does not answer at the end")
        chaos.outage("the end", 30)
    drained, left = drain(a, srv, led, load)
    res = check(a, led)
    rc = srv.stop()
    if rc != 0:
        led.problem("dqd exited %r after SIGTERM" % (rc,))
    v = subprocess.run([a.dqctl, "-d", srv.data, "verify"],
                       capture_output=True, text=True)
    if v.returncode != 0:
        led.problem("dqctl verify exited %d: %s %s" % (
            v.returncode, v.stdout[-2000:], v.stderr[-2000:]))
    statuses = {}
    for m in led.msgs.values():
        statuses[m.status] = statuses.get(m.status, 0) + 1
    print("duration %.0f s, durability %s, seed %d" %
          (time.monotonic() - t0, a.durability, a.seed))
    print("messages: %r" % statuses)
    print("deliveries: %d (uids delivered %d), drained at the end %d, "
          "queues left %r" % (sum(len(x) for x in led.deliv.values()),
                              len(led.deliv), drained, left))
    print("operations: %r" % dict(sorted(led.counts.items())))
    print("checks: %r; SPOP replies lost: up to %d messages"
          % (res, led.spop_lost))
    print("dqd log: %r" % log_summary(srv.log))
    print("worst outage after a kill: %.2f s; slow replies: %r"
          % (chaos.worst_outage, led.slow[:20]))
    for e in chaos.events[:10]:
        print("event: " + e)
    if led.problems:
        print("PROBLEMS (%d):" % len(led.problems))
        for x in led.problems[:100]:
            print("  " + x)
        return 1
    print("OK")
    if not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
