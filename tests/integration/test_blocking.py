#!/usr/bin/env python3
"""Blocking consumers (SPEC 4.2): BSPOP and QRESERVE ... BLOCK.

Replies, timeouts, wake-ups at a message's due time and after an enqueue
made through another worker process (the measured delays are printed),
disconnected blocked clients, idle CPU with many blocked clients, and
pipelined commands queued behind a blocked one.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402
import redis  # noqa: E402

LATE_MS = 50          # a blocked consumer may be this late, never early
SETTLE = 0.15         # time for a consumer to reach the blocked state


def now_ms():
    return time.time() * 1000.0


class Call(threading.Thread):
    """Runs one (blocking) command in a thread; records the reply and the
    wall and monotonic times at which it came back."""

    def __init__(self, client, *args):
        super().__init__(daemon=True)
        self.client, self.args = client, args
        self.reply = self.error = None
        self.t_wall = self.t_mono = None
        self.start()

    def run(self):
        try:
            self.reply = self.client.execute_command(*self.args)
        except Exception as e:   # noqa: BLE001
            self.error = e
        self.t_mono = time.monotonic()
        self.t_wall = now_ms()

    def result(self, timeout=10):
        self.join(timeout)
        assert not self.is_alive(), "%r still blocked" % (self.args,)
        if self.error is not None:
            raise self.error
        return self.reply


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])    # utime, stime
    return total


class Base(dqtest.ServerCase):
    server_kw = dict(workers=2)

    def assert_on_time(self, t_wall, due, what):
        late = t_wall - due
        print("\n%s: delivered %.1f ms after its due time" % (what, late))
        self.assertGreaterEqual(late, 0, "%s delivered early" % what)
        self.assertLess(late, LATE_MS, "%s delivered late" % what)


class Bspop(Base):

    def test_immediate_single_and_multi(self):
        self.x("SADD", "a", "a1", 0, "a2", 0)
        self.x("SADD", "b", "b1", 0)
        self.x("SADD", "c", "c-later", 60000)
        self.assertEqual(self.x("BSPOP", "a", 1), [b"a", b"a1"])
        # first queue (in argument order) with a due message wins
        self.assertEqual(self.x("BSPOP", "b", "a", 1), [b"b", b"b1"])
        self.assertEqual(self.x("BSPOP", "missing", "c", "a", 1),
                         [b"a", b"a2"])
        self.assertIsNone(self.x("BSPOP", "missing", "c", "a", "b", 0.05))
        self.assertEqual(self.r.scard("c"), 1)
        # due order within a queue, earlier due first
        self.x("QPUT", "d", "late", "L", 60)
        self.x("QPUT", "d", "early", "E", 30)
        time.sleep(0.08)
        self.assertEqual(self.x("BSPOP", "d", 1), [b"d", b"E"])
        self.assertEqual(self.x("BSPOP", "d", 1), [b"d", b"L"])
        # binary queue names and bodies; a taken message is gone for good
        self.x("SADD", b"q\x00\xff", b"\r\n\x00", 0)
        self.assertEqual(self.x("BSPOP", b"q\x00\xff", 1),
                         [b"q\x00\xff", b"\r\n\x00"])
        self.assertEqual(self.r.scard(b"q\x00\xff"), 0)
        raw = self.srv.raw(dqtest.resp_cmd("BSPOP", "zz", "0.01"))
        self.assertEqual(raw, b"*-1\r\n")
        self.x("SADD", "zz", "v", 0)
        raw = self.srv.raw(dqtest.resp_cmd("BSPOP", "zz", "1"))
        self.assertEqual(raw, b"*2\r\n$2\r\nzz\r\n$1\r\nv\r\n")

    def test_bspop_takes_a_reserved_message_after_its_lease(self):
        mid = self.x("QADD", "q", "m", 0)[0]
        self.assertEqual(len(self.x("QRESERVE", "q", 1, 300)), 1)
        t0 = time.monotonic()
        self.assertEqual(self.x("BSPOP", "q", 2), [b"q", b"m"])
        took = time.monotonic() - t0
        self.assertGreater(took, 0.25)
        self.assertLess(took, 0.3 + LATE_MS / 1000.0)
        self.assertEqual(self.x("QACK", "q", mid), 0)
        self.assertEqual(self.r.scard("q"), 0)

    def test_timeouts(self):
        for t, secs in (("0.2", 0.2), ("0.15", 0.15), (".1", 0.1),
                        ("1", 1.0)):
            with self.subTest(timeout=t):
                t0 = time.monotonic()
                self.assertIsNone(self.x("BSPOP", "empty", "other", t))
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, secs - 0.002)
                self.assertLess(took, secs + 0.15)
        self.assertEqual(self.r.keys(), [])

    def test_tiny_timeouts_are_one_millisecond_not_forever(self):
        # Redis rounds up to whole milliseconds: only 0 waits for ever
        for t in ("0.0000001", "1e-9", "0.0005", "0.001"):
            with self.subTest(timeout=t):
                t0 = time.monotonic()
                self.assertIsNone(self.x("BSPOP", "empty", t))
                self.assertLess(time.monotonic() - t0, 2)

    def test_bad_input(self):
        self.assertIn("wrong number of arguments", self.err("BSPOP", "q"))
        self.assertIn("wrong number of arguments", self.err("BSPOP"))
        for t in ("-1", "-0.5", "abc", "", "nan", "inf", "1e12", "1s"):
            with self.subTest(timeout=t):
                self.assertErrRaw(self.srv, "-ERR ", "BSPOP", "q", t)
        self.assertEqual(self.x("BSPOP", "q", "q", "0.01"), None)
        self.assertIn("queue name",
                      self.err("BSPOP", "q", "n" * 5000, "0.01"))

    def test_forever(self):
        c = self.srv.client()
        call = Call(c, "BSPOP", "slow", "other", 0)
        time.sleep(0.6)
        self.assertTrue(call.is_alive(), "BSPOP 0 came back: %r" % call.reply)
        t0 = time.monotonic()
        self.x("SADD", "other", "finally", 0)
        self.assertEqual(call.result(), [b"other", b"finally"])
        print("\nBSPOP 0: woken %.1f ms after the SADD"
              % ((call.t_mono - t0) * 1000))
        self.assertLess(call.t_mono - t0, LATE_MS / 1000.0)

    def test_due_time_message_already_there(self):
        for delay in (120, 300):
            due = int(now_ms()) + delay
            self.x("QPUTAT", "q", "m%d" % delay, "x", due)
            self.assertEqual(self.x("BSPOP", "q", 2), [b"q", b"x"])
            self.assert_on_time(now_ms(), due,
                                "BSPOP, message due in %d ms" % delay)

    def test_due_time_message_enqueued_while_blocked(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        for producer in (c1, c2):    # same worker, then another worker
            call = Call(c1, "BSPOP", "q", 3)
            time.sleep(SETTLE)
            due = int(now_ms()) + 250
            producer.execute_command("QPUTAT", "q", "id", "body", due)
            self.assertEqual(call.result(), [b"q", b"body"])
            self.assert_on_time(call.t_wall, due,
                                "BSPOP blocked before a QPUTAT due in 250 ms"
                                " (%s worker)" % ("same" if producer is c1
                                                  else "another"))

    def test_earlier_message_arrives_while_waiting_for_a_later_one(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        self.x("SADD", "q", "late", 5000)
        call = Call(c1, "BSPOP", "q", 3)
        time.sleep(SETTLE)
        due = int(now_ms()) + 200
        c2.execute_command("QPUTAT", "q", "soon", "soon", due)
        self.assertEqual(call.result(), [b"q", b"soon"])
        self.assert_on_time(call.t_wall, due, "earlier message")
        # and QRESCHEDULE of the later one to an earlier time
        call = Call(c1, "BSPOP", "q", 3)
        time.sleep(SETTLE)
        mid = self.x("QPEEK", "q", 1)[0][0]
        t = int(now_ms())      # the server counts whole milliseconds
        self.assertEqual(c2.execute_command("QRESCHEDULE", "q", mid, 200), 1)
        self.assertEqual(call.result(), [b"q", b"late"])
        self.assert_on_time(call.t_wall, t + 200, "QRESCHEDULE 200 ms")

    def test_redis_cli(self):
        self.x("SADD", "q", "hello", 0)
        self.assertEqual(self.srv.cli("BSPOP", "q", "1").split(),
                         ["q", "hello"])
        t0 = time.monotonic()
        self.assertEqual(self.srv.cli("BSPOP", "q", "0.2").strip(), "")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)


class Counted(Base):
    server_kw = dict(workers=1)

    def commands(self):
        """total_commands_processed, the INFO asking included."""
        return int(self.r.info("stats")["total_commands_processed"])

    def test_a_blocking_command_counts_once(self):
        """A blocked command runs again when woken; each run was counted
        as a command (a BSPOP that timed out counted 4 times, one served
        after a wait 3 or more)."""
        c = self.srv.client()
        for args, reply in ((("BSPOP", "q", "0.3"), None),
                            (("QRESERVE", "q", 1, 1000, "BLOCK", 300), [])):
            with self.subTest(cmd=args[0]):
                n = self.commands()
                self.assertEqual(c.execute_command(*args), reply)
                self.assertEqual(self.commands() - n, 2)
        n = self.commands()
        call = Call(c, "BSPOP", "other", "q", 5)
        time.sleep(0.3)
        self.x("SADD", "q", "m", 0)
        self.assertEqual(call.result(), [b"q", b"m"])
        self.assertEqual(self.commands() - n, 3)

    def test_commands_count_when_they_run(self):
        """As Redis: a command queued by MULTI counts when EXEC runs it
        (it counted twice), a refused one not at all."""
        c = self.srv.client()
        n = self.commands()
        p = c.pipeline()
        p.execute_command("SADD", "q", "a", 0)
        p.execute_command("BSPOP", "q", 0)
        self.assertEqual(p.execute(), [1, [b"q", b"a"]])
        self.assertEqual(self.commands() - n, 1 + 4)   # MULTI, 2, EXEC
        n = self.commands()
        for args in (("NOSUCH",), ("SADD", "q"), ("MULTI", "x")):
            self.assertRaises(redis.ResponseError, c.execute_command, *args)
        self.assertEqual(self.commands() - n, 1)


class QreserveBlock(Base):

    def test_timeout_and_forever(self):
        t0 = time.monotonic()
        self.assertEqual(self.x("QRESERVE", "q", 5, 1000, "BLOCK", 200), [])
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.2 - 0.002)
        self.assertLess(took, 0.3)
        self.assertEqual(self.r.keys(), [])
        c = self.srv.client()
        call = Call(c, "QRESERVE", "q", 5, 60000, "BLOCK", 0)
        time.sleep(0.5)
        self.assertTrue(call.is_alive(), "BLOCK 0 came back: %r" % call.reply)
        t0 = time.monotonic()
        ids = self.x("QADD", "q", "a", 0, "b", 0)
        got = call.result()
        print("\nQRESERVE BLOCK 0: woken %.1f ms after the QADD"
              % ((call.t_mono - t0) * 1000))
        self.assertLess(call.t_mono - t0, LATE_MS / 1000.0)
        # the consumer gets what was due when it ran: one or both
        self.assertTrue(got in ([[ids[0], b"a", 1]],
                                [[ids[0], b"a", 1], [ids[1], b"b", 1]]), got)
        st = self.x("QSTAT", "q")
        self.assertEqual(st[st.index(b"reserved") + 1], len(got))
        # a message present: returns at once
        self.x("QADD", "now", "n", 0)
        self.assertEqual(len(self.x("QRESERVE", "now", 1, 1000, "BLOCK", 0)),
                         1)
        # count 0 never blocks
        t0 = time.monotonic()
        self.assertEqual(self.x("QRESERVE", "none", 0, 1000, "BLOCK", 0), [])
        self.assertLess(time.monotonic() - t0, 0.1)

    def test_due_time(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        due = int(now_ms()) + 300
        self.x("QPUTAT", "q", "id1", "one", due)
        got = c1.execute_command("QRESERVE", "q", 5, 1000, "BLOCK", 2000)
        self.assertEqual(got, [[b"id1", b"one", 1]])
        self.assert_on_time(now_ms(), due, "QRESERVE BLOCK, message there")
        call = Call(c1, "QRESERVE", "q2", 5, 1000, "BLOCK", 2000)
        time.sleep(SETTLE)
        due = int(now_ms()) + 200
        c2.execute_command("QPUTAT", "q2", "id2", "two", due)
        self.assertEqual(call.result(), [[b"id2", b"two", 1]])
        self.assert_on_time(call.t_wall, due,
                            "QRESERVE BLOCK, QPUTAT from another worker")

    def test_redelivery_at_lease_end(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        mid = self.x("QADD", "q", "m", 0)[0]
        got = c1.execute_command("QRESERVE", "q", 1, 300)
        lease_end = self.x("QPEEK", "q", 1)[0][2]
        self.assertEqual(got, [[mid, b"m", 1]])
        got = c2.execute_command("QRESERVE", "q", 1, 300, "BLOCK", 3000)
        self.assertEqual(got, [[mid, b"m", 2]])
        self.assert_on_time(now_ms(), lease_end, "redelivery at lease end")

    def test_qnack_wakes_consumer_on_another_worker(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        mid = self.x("QADD", "q", "m", 0)[0]
        c1.execute_command("QRESERVE", "q", 1, 60000)
        call = Call(c2, "QRESERVE", "q", 1, 60000, "BLOCK", 3000)
        time.sleep(SETTLE)
        t0 = time.monotonic()
        self.assertEqual(c1.execute_command("QNACK", "q", mid, 0), 1)
        self.assertEqual(call.result(), [[mid, b"m", 2]])
        print("\nQNACK 0 -> blocked QRESERVE on another worker: %.1f ms"
              % ((call.t_mono - t0) * 1000))
        self.assertLess(call.t_mono - t0, LATE_MS / 1000.0)

    def test_qextend_shortening_wakes_consumer(self):
        (_, c1), (_, c2) = list(dqtest.clients_on_workers(self.srv, 2).items())
        mid = self.x("QADD", "q", "m", 0)[0]
        c1.execute_command("QRESERVE", "q", 1, 60000)
        call = Call(c2, "QRESERVE", "q", 1, 60000, "BLOCK", 2000)
        time.sleep(SETTLE)
        t = int(now_ms())
        self.assertEqual(c1.execute_command("QEXTEND", "q", mid, 200), 1)
        got = call.result()
        self.assertEqual(got, [[mid, b"m", 2]],
                         "a blocked consumer missed a lease shortened by "
                         "QEXTEND (it waits for the old lease end)")
        self.assert_on_time(call.t_wall, t + 200, "lease shortened by QEXTEND")

    def test_bad_input(self):
        for t in ("-1", "abc", "1.5", ""):
            with self.subTest(block=t):
                self.assertErrRaw(self.srv, "-ERR ", "QRESERVE", "q", 1, 10,
                                  "BLOCK", t)


class DeadLetterWake(Base):
    server_kw = dict(workers=2, max_deliveries=1)

    def test_blocked_consumer_of_dead_queue(self):
        mid = self.x("QADD", "q", "poison", 0)[0]
        self.assertEqual(self.x("QRESERVE", "q", 1, 300), [[mid, b"poison", 1]])
        lease_end = self.x("QPEEK", "q", 1)[0][2]
        c = self.srv.client()
        call = Call(c, "BSPOP", "q:dead", 2)
        # nobody touches q: the housekeeper moves it within ~100 ms
        got = call.result()
        waited = call.t_wall - lease_end
        print("\ndead letter reached a blocked BSPOP of q:dead %.1f ms after "
              "the lease end (reply %r)" % (waited, got))
        self.assertEqual(got, [b"q:dead", b"poison"],
                         "a consumer blocked on q:dead was not woken by "
                         "the move to the dead queue")
        self.assertLess(waited, 100 + 100)


class CrossWorker(Base):
    server_kw = dict(workers=3)

    def test_wake_from_another_worker(self):
        pairs = list(dqtest.clients_on_workers(self.srv, 3).items())
        delays = []
        for ci, (cpid, consumer) in enumerate(pairs):
            for pi, (ppid, producer) in enumerate(pairs):
                if ci == pi:
                    continue
                for kind in ("BSPOP", "QRESERVE"):
                    q = "x%d%d%s" % (ci, pi, kind)
                    if kind == "BSPOP":
                        call = Call(consumer, "BSPOP", "other", q, 5)
                    else:
                        call = Call(consumer, "QRESERVE", q, 1, 1000,
                                    "BLOCK", 5000)
                    time.sleep(SETTLE)
                    self.assertTrue(call.is_alive())
                    t0 = time.monotonic()
                    if kind == "BSPOP":
                        producer.execute_command("SADD", q, "m", 0)
                    else:
                        producer.execute_command("QPUT", q, "id", "m", 0)
                    got = call.result()
                    d = (call.t_mono - t0) * 1000
                    delays.append(d)
                    print("\n%s blocked in worker %d, enqueue through worker "
                          "%d: woken after %.2f ms" % (kind, cpid, ppid, d))
                    if kind == "BSPOP":
                        self.assertEqual(got, [q.encode(), b"m"])
                    else:
                        self.assertEqual(got, [[b"id", b"m", 1]])
        delays.sort()
        print("cross-worker wake-up: median %.2f ms, max %.2f ms over %d"
              % (delays[len(delays) // 2], delays[-1], len(delays)))
        self.assertLess(delays[-1], LATE_MS)

    def test_no_lost_wakeup_when_enqueue_races_the_block(self):
        (_, c1), (_, c2), (_, c3) = list(dqtest.clients_on_workers(self.srv, 3).items())
        worst, slow = 0.0, 0
        for i in range(150):
            consumer = c1 if i % 2 else c3
            call = Call(consumer, "BSPOP", "race", 3)
            if i % 3:
                time.sleep(0.0005 * (i % 7))
            c2.execute_command("SADD", "race", "m%d" % i, 0)
            t0 = time.monotonic()
            self.assertEqual(call.result(), [b"race", b"m%d" % i])
            d = call.t_mono - t0
            worst = max(worst, d)
            slow += d > LATE_MS / 1000.0
        print("\n150 enqueues racing a blocking BSPOP on another worker: "
              "worst %.1f ms after the SADD reply, %d over %d ms"
              % (worst * 1000, slow, LATE_MS))
        self.assertEqual(slow, 0, "a wake-up was lost (the consumer slept "
                         "until its timeout)")

    def test_many_blocked_consumers_each_get_one(self):
        conns = [c for _, c in list(dqtest.clients_on_workers(self.srv, 3).items())]
        while len(conns) < 12:
            conns.append(self.srv.client())
        workers = {dqtest.worker_of(c) for c in conns}
        self.assertEqual(len(workers), 3)
        calls = [Call(c, "BSPOP", "q", 5) for c in conns]
        time.sleep(SETTLE * 2)
        t0 = time.monotonic()
        for i in range(12):
            self.x("SADD", "q", "m%d" % i, 0)
        got = [call.result() for call in calls]
        took = max(c.t_mono for c in calls) - t0
        print("\n12 blocked consumers on 3 workers served in %.1f ms"
              % (took * 1000))
        self.assertEqual(sorted(g[1] for g in got),
                         sorted(b"m%d" % i for i in range(12)))
        self.assertEqual(self.r.scard("q"), 0)
        self.assertLess(took, 0.5)


class Fairness(Base):
    """Consumers blocked on one queue are served in the order they
    blocked, as Redis serves BLPOP's waiters: the one that waited longest
    gets the next message.  They used to be served newest connection
    first, so with fewer messages than consumers the oldest could wait
    until its timeout."""
    server_kw = dict(workers=1)

    def served_order(self, block_cmd, take_cmd):
        conns = [self.srv.client() for _ in range(4)]
        for c in conns:
            c.ping()                  # connected in this order
        order = [2, 0, 3, 1]          # neither that order nor its reverse
        calls = {}
        for i in order:
            calls[i] = Call(conns[i], *block_cmd)
            time.sleep(SETTLE)
        served = []
        for n in range(4):
            self.x(*take_cmd(n))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                done = [i for i, c in calls.items()
                        if not c.is_alive() and i not in served]
                if done:
                    break
                time.sleep(0.005)
            self.assertEqual(len(done), 1, "one message woke %r" % done)
            served += done
            time.sleep(0.05)          # the others are blocked again
        for i in served:
            self.assertIsNotNone(calls[i].result())
        return order, served

    def test_bspop_oldest_waiter_first(self):
        order, served = self.served_order(
            ("BSPOP", "f", 10), lambda n: ("SADD", "f", "m%d" % n, 0))
        self.assertEqual(served, order)

    def test_qreserve_block_oldest_waiter_first(self):
        order, served = self.served_order(
            ("QRESERVE", "g", 1, 60000, "BLOCK", 10000),
            lambda n: ("QADD", "g", "m%d" % n, 0))
        self.assertEqual(served, order)


class Disconnect(Base):
    server_kw = dict(workers=2)

    def test_disconnected_blocked_client_forgotten(self):
        socks = []
        for i in range(6):
            s = self.srv.connect()
            cmd = (dqtest.resp_cmd("BSPOP", "q", 0) if i % 2 == 0 else
                   dqtest.resp_cmd("QRESERVE", "q", 1, 60000, "BLOCK", 0))
            s.sendall(cmd)
            socks.append(s)
        time.sleep(SETTLE)
        for s in socks:
            s.close()
        time.sleep(SETTLE)
        # the message must not go to a client that is gone
        self.x("QADD", "q", "m1", 0)
        time.sleep(0.2)
        st = self.x("QSTAT", "q")
        st = {st[i]: st[i + 1] for i in range(0, len(st), 2)}
        self.assertEqual((st[b"messages"], st[b"reserved"],
                          st[b"delivered_total"]), (1, 0, 0),
                         "a message was delivered to a disconnected client")
        # a live consumer (on each worker) gets the next ones
        for _, c in list(dqtest.clients_on_workers(self.srv, 2).items()):
            call = Call(c, "BSPOP", "q2", 3)
            time.sleep(SETTLE)
            self.x("SADD", "q2", "live", 0)
            self.assertEqual(call.result(), [b"q2", b"live"])
        self.assertEqual(self.x("BSPOP", "q", 1), [b"q", b"m1"])
        self.assertTrue(self.r.ping())
        # the server logs no errors about it and still counts clients sanely
        info = self.r.info("clients")
        self.assertLess(info["connected_clients"], 20)

    def blocked_clients(self, want, timeout=2.0):
        """INFO's blocked_clients once it reads want, or at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.r.info("clients")["blocked_clients"]
            if n == want or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)

    def test_blocked_gauge_after_disconnect(self):
        """blocked_clients drops when blocked clients disconnect, not when
        their worker next blocks someone (it stayed at 3)."""
        socks = []
        for i in range(3):
            s = self.srv.connect()
            s.sendall(dqtest.resp_cmd("BSPOP", "x", 0) if i < 2 else
                      dqtest.resp_cmd("QRESERVE", "x", 1, 1000, "BLOCK", 0))
            socks.append(s)
        self.assertEqual(self.blocked_clients(3), 3)
        socks.pop().close()
        self.assertEqual(self.blocked_clients(2), 2)
        for s in socks:
            s.close()
        self.assertEqual(self.blocked_clients(0), 0)

    def test_disconnect_while_other_clients_wait(self):
        keep = self.srv.connect()
        keep.sendall(dqtest.resp_cmd("BSPOP", "q", 5))
        gone = self.srv.connect()
        gone.sendall(dqtest.resp_cmd("BSPOP", "q", 5))
        time.sleep(SETTLE)
        gone.close()
        time.sleep(0.05)
        self.x("SADD", "q", "m", 0)
        reply = dqtest.read_raw(keep, timeout=2, replies=1)
        self.assertEqual(dqtest.resp_parse_all(reply), [[b"q", b"m"]])
        keep.close()


class StopWhileBlocked(Base):

    def test_graceful_stop_with_blocked_clients(self):
        socks = []
        for i in range(10):
            s = self.srv.connect()
            s.sendall(dqtest.resp_cmd("BSPOP", "q", 0) if i % 2 else
                      dqtest.resp_cmd("QRESERVE", "q", 1, 1000, "BLOCK", 0))
            socks.append(s)
        self.x("SADD", "later", "x", 60000)
        time.sleep(SETTLE)
        t0 = time.monotonic()
        self.srv.stop()          # asserts exit status 0
        took = time.monotonic() - t0
        print("\nstopped with 10 blocked clients in %.2f s" % took)
        self.assertLess(took, 5.0)
        for s in socks:
            self.assertTrue(dqtest.is_closed(s, 2.0))
            s.close()
        self.srv.start()
        r = self.srv.client()
        self.assertEqual(r.scard("later"), 1)


class Idle(Base):
    server_kw = dict(workers=3)

    def cpu_over(self, seconds):
        """CPU seconds all dqd processes used in the next `seconds`, and
        the time that really passed."""
        pids = [self.srv.pid] + self.srv.worker_pids()
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(pids)
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_ticks(pids)
        return (c1 - c0) / float(hz), t1 - t0

    def test_cpu_idle_after_a_lone_client(self):
        # After a lone client's batch a worker polls without sleeping for
        # 50 us (worker.c, wait_events); then it must sleep again.
        c = self.srv.client()
        for i in range(2000):
            c.execute_command("SADD", "lone", "m%d" % i, 60000)
        cpu, took = self.cpu_over(2.0)
        print("\nidle after 2000 requests of one client: %.3f s CPU in "
              "%.2f s" % (cpu, took))
        self.assertLessEqual(cpu, 0.06, "dqd spins while nobody sends")
        self.assertEqual(c.scard("lone"), 2000)

    def test_cpu_with_many_blocked_clients(self):
        socks = []
        for i in range(150):
            s = self.srv.connect()
            if i % 3 == 0:
                s.sendall(dqtest.resp_cmd("QRESERVE", "idle%d" % (i % 5), 1,
                                          1000, "BLOCK", 0))
            elif i % 3 == 1:
                s.sendall(dqtest.resp_cmd("BSPOP", "idle%d" % (i % 5),
                                          "other", 0))
            else:
                s.sendall(dqtest.resp_cmd("BSPOP", "idle%d" % (i % 5), 30))
            socks.append(s)
        self.x("SADD", "idle-delayed", "later", 60000)   # a timer far away
        time.sleep(0.5)
        cpu, took = self.cpu_over(2.0)
        print("\n150 blocked clients: %.3f s CPU of all dqd processes in "
              "%.2f s" % (cpu, took))
        self.assertLessEqual(cpu, 0.06, "dqd burns CPU while clients wait")
        # none of them got a reply; the server still works
        for s in socks:
            s.setblocking(False)
            try:
                d = s.recv(100)
                self.fail("a blocked client got %r" % d)
            except BlockingIOError:
                pass
            s.setblocking(True)
        self.x("SADD", "idle0", "wake", 0)
        time.sleep(0.2)
        replies = []
        for s in socks:
            s.setblocking(False)
            try:
                replies.append(s.recv(1000))
            except BlockingIOError:
                pass
        self.assertEqual(len(replies), 1, replies)
        self.assertIn(b"wake", replies[0])
        for s in socks:
            s.close()
        self.assertTrue(self.r.ping())


class Pipeline(Base):

    def test_commands_after_bspop_wait_and_keep_order(self):
        s = self.srv.connect()
        s.sendall(dqtest.resp_cmd("BSPOP", "pq", 3) +
                  dqtest.resp_cmd("PING") +
                  dqtest.resp_cmd("ECHO", "after") +
                  dqtest.resp_cmd("SCARD", "pq") +
                  dqtest.resp_cmd("QRESERVE", "pq2", 1, 1000, "BLOCK", 3000) +
                  dqtest.resp_cmd("ECHO", "last"))
        early = dqtest.read_raw(s, timeout=0.4)
        self.assertEqual(early, b"", "replies came before BSPOP had one")
        self.x("SADD", "pq", "m", 0, "n", 0)
        part = dqtest.read_raw(s, timeout=3, replies=4)
        self.assertEqual(dqtest.resp_parse_all(part),
                         [[b"pq", b"m"], "PONG", b"after", 1])
        time.sleep(0.2)
        s.setblocking(False)
        with self.assertRaises(BlockingIOError):
            s.recv(100)
        s.setblocking(True)
        self.x("QPUT", "pq2", "i", "b", 0)
        rest = dqtest.read_raw(s, timeout=3, replies=2)
        self.assertEqual(dqtest.resp_parse_all(rest),
                         [[[b"i", b"b", 1]], b"last"])
        s.close()

    def test_later_commands_of_the_pipeline_do_not_feed_bspop(self):
        t0 = time.monotonic()
        out = self.srv.raw(dqtest.resp_cmd("BSPOP", "pp", "0.3") +
                           dqtest.resp_cmd("SADD", "pp", "m", 0) +
                           dqtest.resp_cmd("SPOP", "pp"), timeout=3)
        took = time.monotonic() - t0
        self.assertEqual(dqtest.resp_parse_all(out), [None, 1, b"m"])
        self.assertGreaterEqual(took, 0.3)

    def test_redis_py_pipeline(self):
        c = self.srv.client()
        p = c.pipeline(transaction=False)
        p.execute_command("BSPOP", "rp", 1)
        p.execute_command("QADD", "rp", "x", 0)
        p.execute_command("BSPOP", "rp", 1)
        p.execute_command("QRESERVE", "rp", 1, 100, "BLOCK", 100)
        t0 = time.monotonic()
        res = p.execute()
        self.assertGreaterEqual(time.monotonic() - t0, 1.0 + 0.1 - 0.01)
        self.assertIsNone(res[0])
        self.assertEqual(len(res[1]), 1)
        self.assertEqual(res[2], [b"rp", b"x"])
        self.assertEqual(res[3], [])


if __name__ == "__main__":
    dqtest.main()
