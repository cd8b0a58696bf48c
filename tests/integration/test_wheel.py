#!/usr/bin/env python3
"""The wheel (doc/storage.md): messages due far ahead wait under far keys.

A message due more than one bucket (wheel_bucket_ms) after its enqueue is
kept in its bucket, ordered by arrival, and moved to the due-ordered keys by
the housekeeper about a bucket before it is due, or by a consumer that
finds the bucket due first.  These tests use 200 ms buckets so that
messages go far and come back within a second or two, and check that
nothing of it shows: delivery on time and never early, QPEEK and QSTAT
exact across near and far messages, every operation by id on a far
message, the housekeeper stopped, a restart with another width in the
configuration, and kill -9 of everything while buckets move.
"""
import os
import random
import re
import signal
import threading
import time

import dqtest

W = 200                 # wheel_bucket_ms in these tests


def now_ms():
    return int(time.time() * 1000)


def stat(c, q):
    r = c.execute_command("QSTAT", q)
    return {r[i].decode(): int(r[i + 1]) for i in range(0, len(r), 2)}


def moves(c):
    return int(c.info("stats")["wheel_moves"])


def qadd(c, q, body, delay):
    """One message; its server-assigned id."""
    return c.execute_command("QADD", q, body, delay)[0]


def housekeeper_pid(srv, timeout=10.0):
    """The live housekeeper, once it has opened the environment: stopped
    (SIGSTOP) in the middle of that, it would hold mutexes the workers'
    own opens and commits wait for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(srv.log_file, errors="replace") as f:
            log = f.read()
        ready = [int(p) for p in
                 re.findall(r"^(\d+):housekeeper .* ready$", log, re.M)]
        live = [p for p in ready if dqtest.pid_alive(p)]
        if live:
            return live[-1]
        time.sleep(0.02)
    raise AssertionError("no housekeeper ready\n" + srv.logs())


def stop_idle_housekeeper(srv, tries=20):
    """SIGSTOPs the housekeeper between two of its operations: stopped
    inside one (its log flush every second, say) it holds a Berkeley DB
    mutex that every writer then waits on, and the test would measure
    that instead.  A write that gets through says it is not the case."""
    hk = housekeeper_pid(srv)
    probe = srv.client(socket_timeout=1)
    for _ in range(tries):
        os.kill(hk, signal.SIGSTOP)
        try:
            probe.execute_command("SADD", "probe", "x", 0)
            dqtest.close_client(probe)
            return hk
        except dqtest.redis.exceptions.TimeoutError:
            os.kill(hk, signal.SIGCONT)
            dqtest.close_client(probe)
            probe = srv.client(socket_timeout=1)
            time.sleep(0.05)
    raise AssertionError("the housekeeper never stopped idle\n" + srv.logs())


def drain_until(c, q, n, timeout, poll=0.005):
    """SPOP q until n messages came back: [(recv_ms, body)]."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for b in c.execute_command("SPOP", q, 100) or []:
            got.append((now_ms(), b))
        time.sleep(poll)
    return got


class WheelTest(dqtest.TestCase):

    def server(self, **kw):
        kw.setdefault("wheel_bucket_ms", W)
        return super().server(**kw)

    def test_far_messages_on_time_never_early(self):
        srv = self.server()
        c = srv.client()
        rng = random.Random(6)
        due = {}
        for i in range(600):
            d = rng.randrange(0, 2500)      # near and far, 12 buckets
            body = b"m%d" % i
            # the server's due time is at least this, and at most one
            # round trip more (600 of them took over 150 ms on a busy
            # machine: measured from the first, lateness was that much)
            due[body] = now_ms() + d
            c.execute_command("SADD", "q", body, d)
        got = drain_until(c, "q", len(due), 10.0)
        self.assertEqual(sorted(b for _, b in got), sorted(due))
        late = [t - due[b] for t, b in got]
        early = [x for x in late if x < -1]   # ms clock rounding
        print("600 messages: lateness max %d ms, %d moved"
              % (max(late), moves(c)))
        self.assertEqual(early, [])
        # Late by a poll and a moment here; the lateness targets (p99 <
        # 5 ms, max < 50 ms) are measured by the bench.  182 ms was seen
        # with two test suites sharing the 2 cores.
        self.assertLess(max(late), 400)
        self.assertGreater(moves(c), 300)     # most went far and came back

    def test_blocked_consumer_wakes_for_far_message(self):
        srv = self.server()
        c, b = srv.client(), srv.client()
        out = {}

        def consume():
            out["r"] = b.execute_command("BSPOP", "q", 5)
            out["t"] = now_ms()
        th = threading.Thread(target=consume)
        th.start()
        time.sleep(0.1)
        t0 = now_ms()
        c.execute_command("SADD", "q", "later", 1200)   # a far key
        th.join(6)
        self.assertEqual(out["r"], [b"q", b"later"])
        self.assertGreaterEqual(out["t"], t0 + 1200 - 1)
        self.assertLess(out["t"], t0 + 1200 + 150)

    def test_peek_and_stat_see_near_and_far(self):
        srv = self.server()
        c = srv.client()
        t0 = now_ms()
        ids = {}
        for name, d in (("a", 60000), ("b", 100), ("c", 30000),
                        ("d", 0), ("e", 30000), ("f", 90000)):
            ids[name] = qadd(c, "q", name, d)
        # Rescheduled messages are near keys whatever their due time: g
        # sits among the near keys after far ones due earlier.
        ids["g"] = qadd(c, "q", "g", 0)
        self.assertEqual(c.execute_command("QRESCHEDULE", "q", ids["g"],
                                           45000), 1)
        peek = c.execute_command("QPEEK", "q", 100)
        self.assertEqual([m[1] for m in peek],
                         [b"d", b"b", b"c", b"e", b"g", b"a", b"f"])
        self.assertEqual([m[0] for m in peek[2:4]], [ids["c"], ids["e"]])
        self.assertEqual([m[1] for m in c.execute_command("QPEEK", "q", 3)],
                         [b"d", b"b", b"c"])
        self.assertEqual([m[1] for m in c.execute_command("QPEEK", "q", 5)],
                         [b"d", b"b", b"c", b"e", b"g"])
        st = stat(c, "q")
        self.assertEqual(st["messages"], 7)
        self.assertEqual(st["ready"], 1)                 # d
        self.assertEqual(st["delayed"], 6)
        time.sleep(0.15)
        st = stat(c, "q")
        self.assertEqual(st["ready"], 2)                 # d, b
        self.assertEqual(st["next_due_ms"], int(peek[2][2]))  # c, far
        self.assertEqual(c.scard("q"), 7)
        self.assertEqual(c.execute_command("SPOP", "q", 10), [b"d", b"b"])
        st = stat(c, "q")
        self.assertEqual((st["messages"], st["ready"], st["delayed"]),
                         (5, 0, 5))
        self.assertEqual(st["next_due_ms"], int(peek[2][2]))

    def test_operations_by_id_on_far_messages(self):
        srv = self.server()
        c = srv.client()
        far = qadd(c, "q", "x", 60000)
        other = qadd(c, "q", "y", 60000)
        self.assertEqual(c.execute_command("QCANCEL", "q", far), 1)
        self.assertEqual(c.execute_command("QCANCEL", "q", far), 0)
        # A producer's id, far: found, replaced, rescheduled near, taken.
        self.assertEqual(c.execute_command("QPUT", "q", "p1", "v1", 60000),
                         1)
        self.assertEqual(c.execute_command("QPUT", "q", "p1", "v2", 50000),
                         0)
        self.assertEqual(c.scard("q"), 2)
        self.assertEqual(c.execute_command("QRESCHEDULE", "q", "p1", 0), 1)
        self.assertEqual(c.execute_command("SPOP", "q"), b"v2")
        # A server id rescheduled from far to far again, then to now.
        t = now_ms()
        self.assertEqual(c.execute_command("QRESCHEDULE", "q", other,
                                           70000), 1)
        d = int(c.execute_command("QPEEK", "q", 1)[0][2]) - t
        self.assertTrue(70000 <= d < 70100, d)
        self.assertEqual(c.execute_command("QRESCHEDULE", "q", other, 0), 1)
        r = c.execute_command("QRESERVE", "q", 1, 30000)
        self.assertEqual(r[0][0], other)
        self.assertEqual(c.execute_command("QACK", "q", other), 1)
        self.assertEqual(stat(c, "q")["messages"], 0)
        # A message put through QPUTAT into a far bucket is found by id.
        self.assertEqual(c.execute_command("QPUTAT", "q", "p2", "v",
                                           now_ms() + 80000), 1)
        self.assertEqual(c.execute_command("QCANCEL", "q", "p2"), 1)
        self.assertEqual(c.scard("q"), 0)

    def test_deleted_queue_with_far_messages(self):
        srv = self.server()
        c = srv.client()
        for i in range(300):
            qadd(c, "q", "old%d" % i, 1000 + i * 10)
        self.assertEqual(c.delete("q"), 1)
        self.assertEqual(c.scard("q"), 0)
        self.assertEqual(c.execute_command("QPEEK", "q", 10), [])
        qadd(c, "q", "new", 600)
        got = drain_until(c, "q", 1, 5.0)
        self.assertEqual([b for _, b in got], [b"new"])
        time.sleep(4)           # the old ones were due by now: none back
        self.assertEqual(c.execute_command("SPOP", "q", 1000), [])
        st = stat(c, "q")
        self.assertEqual((st["messages"], st["delayed"]), (0, 0))

    def test_consumer_moves_buckets_when_housekeeper_stopped(self):
        srv = self.server()
        c = srv.client()
        hk = stop_idle_housekeeper(srv)
        try:
            t0 = now_ms()
            for i in range(50):
                c.execute_command("SADD", "q", "m%d" % i, 800 + i * 10)
            time.sleep(0.3)
            self.assertEqual(c.execute_command("SPOP", "q", 100), [])
            got = drain_until(c, "q", 50, 5.0)
        finally:
            os.kill(hk, signal.SIGCONT)
        self.assertEqual(len(got), 50)
        for t, b in got:
            self.assertGreaterEqual(t, t0 + 800 + int(b[1:]) * 10 - 1)
        self.assertGreaterEqual(moves(c), 50)

    def test_restart_keeps_bucket_width_of_the_data(self):
        srv = self.server()
        c = srv.client()
        ids = [qadd(c, "q", "m%d" % i, 3000 + i)
               for i in range(20)]
        srv.stop()
        srv.settings["wheel_bucket_ms"] = 60000
        srv.write_config()
        srv.start()
        self.assertIn("wheel_bucket_ms stays 200", srv.logs())
        c = srv.client()
        self.assertEqual(c.execute_command("QCANCEL", "q", ids[0]), 1)
        self.assertEqual(c.scard("q"), 19)
        self.assertEqual(stat(c, "q")["delayed"], 19)
        got = drain_until(c, "q", 19, 8.0)
        self.assertEqual(len(got), 19)

    def test_kill9_while_moving_loses_nothing(self):
        srv = self.server(durability="fsync")
        c = srv.client()
        acked = set()
        for i in range(2000):
            acked.add(qadd(c, "q", "m%d" % i, random.randrange(300, 2000)))
        time.sleep(0.7)          # buckets moving, some delivered
        first = c.execute_command("QRESERVE", "q", 100, 60000)
        for mid, _, _ in first:
            self.assertEqual(c.execute_command("QACK", "q", mid), 1)
            acked.discard(mid)
        srv.kill9()
        srv.start()
        c = srv.client()
        self.assertEqual(c.scard("q"), len(acked))
        seen = []
        deadline = time.monotonic() + 10
        while len(seen) < len(acked) and time.monotonic() < deadline:
            for mid, _, _ in c.execute_command("QRESERVE", "q", 100, 60000):
                seen.append(mid)
            time.sleep(0.01)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(set(seen), acked)

    def test_bad_bucket_width_refused(self):
        for bad in (0, 99, 86400001):
            srv = self.server(start=False, wheel_bucket_ms=bad)
            out = dqtest.subprocess.run(
                [dqtest.DQD, "-t", "-c", srv.conf_file],
                capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("wheel_bucket_ms", out.stderr)


if __name__ == "__main__":
    dqtest.main()
