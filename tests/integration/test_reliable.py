#!/usr/bin/env python3
"""Reliable delivery (SPEC 4.2): ids, QADD, QPUT, QPUTAT, QRESERVE, QACK,
QNACK, QEXTEND, QRESCHEDULE, QCANCEL, QPEEK, QSTAT; leases, redelivery and
delivery counts; restarts and kill -9; racing consumers; dead letters.

Blocking (BSPOP, QRESERVE BLOCK) is in test_blocking.py.

Decisions where the contract is silent (see also the report of this file):
- next_due_ms in QSTAT is an absolute Unix time in ms (like QPEEK's
  due_unix_ms): the earliest time after now at which a message of the
  queue becomes due, the end of a live lease included (that is when a
  reserved message becomes deliverable again); -1 when there is none.
- enqueued_total counts every accepted write of a message, a QPUT that
  replaces included; delivered_total counts SPOP/BSPOP takes as well as
  QRESERVE deliveries.
- QPEEK lists messages in the order they become due: a reserved message
  sits at the end of its lease.
"""

import os
import re
import signal
import sys
import threading
import time
import zlib

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402

MAX_DELAY = 3153600000000
# Server-assigned ids: "#" and printable characters (the exact format is
# the server's business).
SERVER_ID = re.compile(rb"^#[0-9A-Za-z_.:-]+$")
ID_COMMANDS = ("QPUT", "QPUTAT", "QACK", "QNACK", "QEXTEND", "QRESCHEDULE",
               "QCANCEL")


def now_ms():
    return int(time.time() * 1000)


def qstat(r, q):
    flat = r.execute_command("QSTAT", q)
    assert len(flat) % 2 == 0, flat
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def stat_fields(**kw):
    base = dict(messages=0, ready=0, delayed=0, reserved=0, next_due_ms=-1,
                enqueued_total=0, delivered_total=0, acked_total=0,
                dead_lettered_total=0)
    base.update(kw)
    return base


class Base(dqtest.ServerCase):
    def err_raw(self, *args):
        return self.assertErrRaw(self.srv, "-ERR ", *args)

    def peek(self, q, n=100):
        return self.x("QPEEK", q, n)

    def wait_for(self, fn, timeout=3.0, step=0.01):
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v or time.monotonic() > deadline:
                return v
            time.sleep(step)


class Enqueue(Base):
    server_kw = dict(max_message_bytes=1000)

    def test_qadd_ids(self):
        ids = self.x("QADD", "q", "a", 0, "b", 0, "c", 60000)
        self.assertEqual(len(ids), 3)
        for i in ids:
            self.assertRegex(i, SERVER_ID)
        self.assertEqual(len(set(ids)), 3)
        more = self.x("QADD", "q", "d", 0)
        self.assertEqual(len(more), 1)
        self.assertNotIn(more[0], ids)
        # ids are unique within the queue across calls and connections
        other = self.srv.client()
        all_ids = set(ids) | set(more)
        for _ in range(20):
            got = other.execute_command("QADD", "q", "z", 0, "z", 0)
            self.assertFalse(all_ids & set(got))
            all_ids |= set(got)
        p = self.peek("q", 3)
        self.assertEqual([(m[0], m[1], m[3]) for m in p],
                         [(ids[0], b"a", 0), (ids[1], b"b", 0),
                          (more[0], b"d", 0)])
        # the ids work with the id commands
        self.assertEqual(self.x("QCANCEL", "q", ids[0]), 1)
        self.assertEqual(self.x("QCANCEL", "q", ids[0]), 0)

    def test_qadd_bad_input_atomic(self):
        self.assertIn("wrong number of arguments",
                      self.err("QADD", "q", "a"))
        self.assertIn("wrong number of arguments",
                      self.err("QADD", "q", "a", 0, "b"))
        self.assertIn("wrong number of arguments", self.err("QADD", "q"))
        for bad in ("-1", "abc", "1.5", "", str(MAX_DELAY + 1)):
            with self.subTest(delay=bad):
                self.err_raw("QADD", "q", "a", 0, "b", bad)
        self.err_raw("QADD", "q", "a", 0, b"x" * 1001, 0)
        self.assertEqual(self.r.scard("q"), 0, "partial QADD")
        self.assertEqual(self.r.keys(), [])
        big = self.x("QADD", "q", b"y" * 1000, MAX_DELAY)
        self.assertEqual(len(big), 1)
        self.assertEqual(self.peek("q")[0][2] - now_ms() > MAX_DELAY - 60000,
                         True)

    def test_sadd_messages_have_ids(self):
        self.assertEqual(self.x("SADD", "q", "s1", 0, "s2", 0), 2)
        p = self.peek("q")
        self.assertEqual([m[1] for m in p], [b"s1", b"s2"])
        for m in p:
            self.assertRegex(m[0], SERVER_ID)
        got = self.x("QRESERVE", "q", 1, 60000)
        self.assertEqual(got, [[p[0][0], b"s1", 1]])
        self.assertEqual(self.x("QACK", "q", p[0][0]), 1)
        self.assertEqual(self.r.spop("q"), b"s2")
        # SPOP took it for good: the id is gone
        self.assertEqual(self.x("QCANCEL", "q", p[1][0]), 0)
        self.assertEqual(self.r.scard("q"), 0)

    def test_qput_create_and_replace(self):
        t0 = now_ms()
        self.assertEqual(self.x("QPUT", "q", "order-1", "v1", 60000), 1)
        t1 = now_ms()
        p = self.peek("q")
        self.assertEqual(len(p), 1)
        self.assertEqual(p[0][:2], [b"order-1", b"v1"])
        self.assertTrue(t0 + 60000 <= p[0][2] <= t1 + 60000, (t0, p, t1))
        self.assertEqual(p[0][3], 0)
        self.assertEqual(self.x("QRESERVE", "q", 10, 1000), [])
        # replace: new body, new due time
        self.assertEqual(self.x("QPUT", "q", "order-1", "v2", 0), 0)
        self.assertEqual(self.r.scard("q"), 1)
        self.assertEqual(self.x("QRESERVE", "q", 10, 60000),
                         [[b"order-1", b"v2", 1]])
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["reserved"]), (1, 1))
        # replacing a reserved message: lease gone, delivery count reset
        self.assertEqual(self.x("QPUT", "q", "order-1", "v3", 0), 0)
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["reserved"], st["ready"]),
                         (1, 0, 1))
        p = self.peek("q")
        self.assertEqual((p[0][0], p[0][1], p[0][3]), (b"order-1", b"v3", 0))
        self.assertLessEqual(p[0][2], now_ms())
        self.assertEqual(self.x("QACK", "q", "order-1"), 0,
                         "the old lease survived the replacement")
        self.assertEqual(self.x("QRESERVE", "q", 10, 60000),
                         [[b"order-1", b"v3", 1]])
        # replace with a later due time: no longer deliverable
        self.assertEqual(self.x("QPUT", "q", "order-1", "v4", 60000), 0)
        self.assertEqual(self.x("QRESERVE", "q", 10, 1000), [])
        self.assertEqual(self.r.scard("q"), 1)
        # idempotent: repeating the same QPUT leaves one message
        for _ in range(3):
            self.assertEqual(self.x("QPUT", "q", "order-1", "v4", 60000), 0)
        self.assertEqual(self.r.scard("q"), 1)
        # same id in another queue is another message
        self.assertEqual(self.x("QPUT", "other", "order-1", "o", 0), 1)
        self.assertEqual(self.r.scard("q"), 1)
        self.assertEqual(self.x("QCANCEL", "other", "order-1"), 1)
        self.assertEqual(self.peek("q")[0][1], b"v4")

    def test_qput_ids_binary_and_limits(self):
        for i in (b"a", b"\x00", b"x\r\ny", bytes(range(256)), b"z" * 512):
            with self.subTest(id=i[:10]):
                self.assertEqual(self.x("QPUT", "b", i, b"\x00body\r\n", 0), 1)
                self.assertEqual(self.x("QRESERVE", "b", 1, 60000),
                                 [[i, b"\x00body\r\n", 1]])
                self.assertEqual(self.x("QACK", "b", i), 1)
        self.assertEqual(self.x("QPUT", "b", "e", b"", 0), 1)
        self.assertEqual(self.x("QRESERVE", "b", 1, 60000), [[b"e", b"", 1]])
        # a producer id equal to a server-assigned one never makes a
        # second message with that id: refused, or it replaces that one
        sid = self.x("QADD", "s", "server", 0)[0]
        try:
            n = self.x("QPUT", "s", sid, "producer", 0)
        except redis.ResponseError:
            n = None
        self.assertIn(n, (None, 0))
        self.assertEqual(self.r.scard("s"), 1)
        self.assertEqual([m[0] for m in self.peek("s")], [sid])

    def test_qput_bad_input(self):
        self.assertIn("wrong number of arguments",
                      self.err("QPUT", "q", "id", "body"))
        self.assertIn("wrong number of arguments",
                      self.err("QPUT", "q", "id", "body", 0, 0))
        self.assertIn("id", self.err("QPUT", "q", "", "body", 0))
        self.assertIn("id", self.err("QPUT", "q", "x" * 513, "body", 0))
        for bad in ("-1", "abc", "1.5", "", " 1", str(MAX_DELAY + 1),
                    "99999999999999999999999"):
            with self.subTest(delay=bad):
                self.err_raw("QPUT", "q", "id", "body", bad)
        self.err_raw("QPUT", "q", "id", b"x" * 1001, 0)
        self.assertEqual(self.r.keys(), [])
        self.assertEqual(self.x("QPUT", "q", "far", "b", MAX_DELAY), 1)
        self.assertGreater(self.peek("q")[0][2], now_ms() + MAX_DELAY - 60000)

    def test_qputat(self):
        t = now_ms()
        self.assertEqual(self.x("QPUTAT", "q", "past", "p", t - 3600000), 1)
        self.assertEqual(self.x("QPUTAT", "q", "zero", "z", 0), 1)
        self.assertEqual(self.x("QPUTAT", "q", "future", "f", t + 60000), 1)
        p = {m[0]: m for m in self.peek("q")}
        self.assertEqual(p[b"future"][2], t + 60000)
        self.assertLessEqual(p[b"past"][2], now_ms())
        got = self.x("QRESERVE", "q", 10, 60000)
        self.assertEqual(sorted(m[0] for m in got), [b"past", b"zero"],
                         "a past due time must mean due now")
        # replace with an absolute time
        self.assertEqual(self.x("QPUTAT", "q", "future", "f2", 0), 0)
        self.assertEqual(self.x("QRESERVE", "q", 10, 60000),
                         [[b"future", b"f2", 1]])
        self.assertEqual(self.x("QPUTAT", "q", "max", "m",
                                now_ms() + MAX_DELAY - 5000), 1)

    def test_qputat_bad_input(self):
        self.assertIn("wrong number of arguments",
                      self.err("QPUTAT", "q", "id", "body"))
        self.assertIn("id", self.err("QPUTAT", "q", "", "b", now_ms()))
        self.assertIn("id", self.err("QPUTAT", "q", "i" * 513, "b", now_ms()))
        for bad in ("-1", "abc", "1.5", "", str(now_ms() + MAX_DELAY + 60000),
                    "99999999999999999999999"):
            with self.subTest(due=bad):
                self.err_raw("QPUTAT", "q", "id", "body", bad)
        self.assertEqual(self.r.keys(), [])


class Reserve(Base):

    def test_qreserve_order_count_and_invisibility(self):
        ids = self.x("QADD", "q", "m1", 0, "m2", 0, "m3", 0, "m4", 0,
                     "later", 60000)
        got = self.x("QRESERVE", "q", 2, 60000)
        self.assertEqual(got, [[ids[0], b"m1", 1], [ids[1], b"m2", 1]])
        got = self.x("QRESERVE", "q", 100, 60000)
        self.assertEqual(got, [[ids[2], b"m3", 1], [ids[3], b"m4", 1]])
        self.assertEqual(self.x("QRESERVE", "q", 100, 60000), [],
                         "reserved or delayed messages were delivered")
        self.assertEqual(self.x("QRESERVE", "q", 0, 60000), [])
        self.assertEqual(self.x("QRESERVE", "missing", 5, 60000), [])
        self.assertEqual(self.r.scard("q"), 5)
        self.assertNotIn(b"missing", self.r.keys())
        # earliest due first, whatever the enqueue order
        self.x("QPUT", "o", "c", "c", 30)
        self.x("QPUT", "o", "b", "b", 20)
        self.x("QPUT", "o", "a", "a", 10)
        time.sleep(0.05)
        self.assertEqual([m[0] for m in self.x("QRESERVE", "o", 3, 1000)],
                         [b"a", b"b", b"c"])
        # huge count and lease are fine
        self.x("QADD", "h", "x", 0)
        self.assertEqual(len(self.x("QRESERVE", "h", 10 ** 9, MAX_DELAY)), 1)

    def test_qreserve_huge_count(self):
        """QRESERVE q 1000000 over 400,000 small messages ran Berkeley
        DB's lock table out and failed ("Cannot allocate memory"): one
        QRESERVE leases at most 100,000 messages, the rest stay due."""
        r = self.srv.client(socket_timeout=120)
        args = []
        for i in range(200000):
            args += ["m%d" % i, i % 1000]
        for _ in range(2):
            self.assertEqual(r.execute_command("SADD", "big", *args), 200000)
        time.sleep(1.1)
        v = r.execute_command("QRESERVE", "big", 1000000, 60000)
        self.assertEqual(len(v), 100000)
        self.assertEqual(v[0][2], 1)
        st = dict(zip(*[iter(r.execute_command("QSTAT", "big"))] * 2))
        self.assertEqual((st[b"reserved"], st[b"ready"]), (100000, 300000))
        self.assertEqual(r.execute_command("QACK", "big",
                                           *[m[0] for m in v]), 100000)
        self.assertEqual(r.scard("big"), 300000)

    def test_qreserve_bad_input(self):
        self.x("QADD", "q", "m", 0)
        for args in (("QRESERVE", "q", 1), ("QRESERVE", "q")):
            self.assertIn("wrong number of arguments", self.err(*args))
        self.assertIn("syntax", self.err("QRESERVE", "q", 1, 100, "BLOCK"))
        self.assertIn("syntax", self.err("QRESERVE", "q", 1, 100, "BLOK", 1))
        self.assertIn("syntax",
                      self.err("QRESERVE", "q", 1, 100, "BLOCK", 1, 2))
        for count in ("-1", "abc", "1.5", ""):
            with self.subTest(count=count):
                self.err_raw("QRESERVE", "q", count, 1000)
        for lease in ("0", "-1", "abc", "1.5", "", str(MAX_DELAY + 1)):
            with self.subTest(lease=lease):
                self.err_raw("QRESERVE", "q", 1, lease)
        for t in ("-1", "abc", "1.5"):
            with self.subTest(block=t):
                self.err_raw("QRESERVE", "q", 1, 1000, "BLOCK", t)
        # nothing was reserved by the failed calls
        st = qstat(self.r, "q")
        self.assertEqual((st["ready"], st["reserved"], st["delivered_total"]),
                         (1, 0, 0))
        # lowercase block keyword works
        self.assertEqual(len(self.x("qreserve", "q", 1, 1000, "block", 10)), 1)

    def test_qack(self):
        ids = self.x("QADD", "q", "a", 0, "b", 0, "c", 0, "d", 60000)
        self.assertEqual(self.x("QACK", "q", ids[0]), 0, "ack of a ready msg")
        self.assertEqual(self.x("QACK", "q", ids[3]), 0, "ack of a delayed msg")
        self.assertEqual(self.x("QACK", "q", "nope"), 0)
        self.assertEqual(self.r.scard("q"), 4)
        got = self.x("QRESERVE", "q", 3, 60000)
        self.assertEqual([m[0] for m in got], ids[:3])
        self.assertEqual(self.x("QACK", "q", ids[0]), 1)
        self.assertEqual(self.x("QACK", "q", ids[0]), 0, "acked twice")
        # several ids: only reserved ones count; duplicates count once
        self.assertEqual(self.x("QACK", "q", ids[1], "nope", ids[3], ids[2],
                                ids[1]), 2)
        self.assertEqual(self.r.scard("q"), 1)
        self.assertEqual(self.x("QACK", "missing", "x", "y"), 0)
        self.assertEqual(self.x("QACK", "q2", ids[3]), 0)
        self.assertIn("wrong number of arguments", self.err("QACK", "q"))
        self.assertIn("id", self.err("QACK", "q", ""))
        self.assertIn("id", self.err("QACK", "q", ids[3], "x" * 513))
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["acked_total"]), (1, 3))

    def test_qnack(self):
        ids = self.x("QADD", "q", "a", 0, "b", 60000)
        self.assertEqual(self.x("QNACK", "q", ids[0], 0), 0, "nack of ready")
        self.assertEqual(self.x("QNACK", "q", ids[1], 0), 0, "nack of delayed")
        self.assertEqual(self.x("QNACK", "q", "nope", 0), 0)
        self.assertEqual(self.x("QNACK", "missing", "nope", 0), 0)
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000),
                         [[ids[0], b"a", 1]])
        t0 = now_ms()
        self.assertEqual(self.x("QNACK", "q", ids[0], 300), 1)
        t1 = now_ms()
        self.assertEqual(self.x("QACK", "q", ids[0]), 0, "ack after nack")
        self.assertEqual(self.x("QNACK", "q", ids[0], 0), 0, "nack twice")
        p = self.peek("q", 1)[0]
        self.assertEqual(p[0], ids[0])
        self.assertTrue(t0 + 300 <= p[2] <= t1 + 300, (t0, p, t1))
        self.assertEqual(p[3], 1, "nack must keep the delivery count")
        st = qstat(self.r, "q")
        self.assertEqual((st["reserved"], st["delayed"], st["ready"]),
                         (0, 2, 0))
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000), [])
        time.sleep(max(0, (p[2] - now_ms()) / 1000.0) + 0.02)
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000),
                         [[ids[0], b"a", 2]])
        # nack 0: due again at once
        self.assertEqual(self.x("QNACK", "q", ids[0], 0), 1)
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000),
                         [[ids[0], b"a", 3]])
        for bad in ("-1", "abc", "", str(MAX_DELAY + 1)):
            with self.subTest(delay=bad):
                self.err_raw("QNACK", "q", ids[0], bad)
        self.assertIn("wrong number of arguments",
                      self.err("QNACK", "q", ids[0]))
        self.assertIn("id", self.err("QNACK", "q", "", 0))
        self.assertIn("id", self.err("QNACK", "q", "n" * 513, 0))
        # still reserved after the failed calls
        self.assertEqual(self.x("QACK", "q", ids[0]), 1)

    def test_qextend(self):
        ids = self.x("QADD", "q", "a", 0, "b", 60000)
        self.assertEqual(self.x("QEXTEND", "q", ids[0], 1000), 0)
        self.assertEqual(self.x("QEXTEND", "q", ids[1], 1000), 0)
        self.assertEqual(self.x("QEXTEND", "q", "nope", 1000), 0)
        self.assertEqual(self.x("QEXTEND", "missing", "nope", 1000), 0)
        self.assertEqual(self.x("QRESERVE", "q", 1, 200),
                         [[ids[0], b"a", 1]])
        t0 = now_ms()
        self.assertEqual(self.x("QEXTEND", "q", ids[0], 120000), 1)
        t1 = now_ms()
        p = {m[0]: m for m in self.peek("q")}
        self.assertTrue(t0 + 120000 <= p[ids[0]][2] <= t1 + 120000)
        self.assertEqual(p[ids[0]][3], 1)
        time.sleep(0.4)   # the first lease would have run out by now
        self.assertEqual(self.x("QRESERVE", "q", 1, 1000), [])
        st = qstat(self.r, "q")
        self.assertEqual(st["reserved"], 1)
        # shorten: the lease ends sooner
        self.assertEqual(self.x("QEXTEND", "q", ids[0], 100), 1)
        time.sleep(0.15)
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000),
                         [[ids[0], b"a", 2]])
        for bad in ("0", "-1", "abc", "", str(MAX_DELAY + 1)):
            with self.subTest(lease=bad):
                self.err_raw("QEXTEND", "q", ids[0], bad)
        self.assertIn("id", self.err("QEXTEND", "q", "", 10))
        self.assertIn("id", self.err("QEXTEND", "q", "e" * 513, 10))
        self.assertIn("wrong number of arguments",
                      self.err("QEXTEND", "q", ids[0]))
        self.assertEqual(self.x("QACK", "q", ids[0]), 1)

    def test_qreschedule_any_state(self):
        ids = self.x("QADD", "q", "ready", 0, "delayed", 60000, "res", 0)
        self.assertEqual([m[0] for m in self.x("QRESERVE", "q", 1, 60000)],
                         [ids[0]])
        # the reserved one is ids[0]; ids[2] is ready
        t0 = now_ms()
        self.assertEqual(self.x("QRESCHEDULE", "q", ids[0], 50000), 1)
        self.assertEqual(self.x("QRESCHEDULE", "q", ids[2], 40000), 1)
        self.assertEqual(self.x("QRESCHEDULE", "q", ids[1], 0), 1)
        t1 = now_ms()
        st = qstat(self.r, "q")
        self.assertEqual((st["reserved"], st["ready"], st["delayed"]),
                         (0, 1, 2))
        self.assertEqual(self.x("QACK", "q", ids[0]), 0,
                         "a rescheduled message is no longer reserved")
        p = self.peek("q")
        self.assertEqual([m[0] for m in p], [ids[1], ids[2], ids[0]])
        self.assertLessEqual(p[0][2], t1)
        self.assertTrue(t0 + 40000 <= p[1][2] <= t1 + 40000)
        self.assertTrue(t0 + 50000 <= p[2][2] <= t1 + 50000)
        self.assertEqual(p[2][3], 1, "delivery count kept")
        self.assertEqual(self.x("QRESERVE", "q", 5, 60000),
                         [[ids[1], b"delayed", 1]])
        self.assertEqual(self.x("QRESCHEDULE", "q", "nope", 0), 0)
        self.assertEqual(self.x("QRESCHEDULE", "missing", "nope", 0), 0)
        self.assertEqual(self.x("QRESCHEDULE", "q", ids[2], MAX_DELAY), 1)
        for bad in ("-1", "abc", "", "1.5", str(MAX_DELAY + 1)):
            with self.subTest(delay=bad):
                self.err_raw("QRESCHEDULE", "q", ids[2], bad)
        self.assertIn("id", self.err("QRESCHEDULE", "q", "", 0))
        self.assertIn("id", self.err("QRESCHEDULE", "q", "r" * 513, 0))
        self.assertIn("wrong number of arguments",
                      self.err("QRESCHEDULE", "q", ids[2]))

    def test_qcancel_every_state(self):
        self.x("QPUT", "q", "reserved", "s", 0)
        self.assertEqual(self.x("QRESERVE", "q", 5, 60000),
                         [[b"reserved", b"s", 1]])
        self.x("QPUT", "q", "expired", "e", 0)
        self.assertEqual(self.x("QRESERVE", "q", 5, 50), [[b"expired", b"e", 1]])
        self.x("QPUT", "q", "ready", "r", 0)
        self.x("QPUT", "q", "delayed", "d", 60000)
        time.sleep(0.1)                             # the 50 ms lease ran out
        self.assertEqual(self.r.scard("q"), 4)
        self.assertEqual(self.x("QCANCEL", "q", "ready"), 1)
        self.assertEqual(self.x("QCANCEL", "q", "delayed"), 1)
        self.assertEqual(self.x("QCANCEL", "q", "reserved", "expired",
                                "nope", "reserved"), 2)
        self.assertEqual(self.r.scard("q"), 0)
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["reserved"], st["ready"],
                          st["delayed"], st["acked_total"]), (0, 0, 0, 0, 0))
        self.assertEqual(self.x("QCANCEL", "q", "ready"), 0)
        self.assertEqual(self.x("QCANCEL", "missing", "a", "b"), 0)
        self.assertEqual(self.peek("q"), [])
        # the id can be used again
        self.assertEqual(self.x("QPUT", "q", "ready", "again", 0), 1)
        self.assertIn("wrong number of arguments", self.err("QCANCEL", "q"))
        self.assertIn("id", self.err("QCANCEL", "q", ""))
        self.assertIn("id", self.err("QCANCEL", "q", "ready", "c" * 513))
        self.assertEqual(self.r.scard("q"), 1, "a failed QCANCEL removed")
        self.assertEqual(self.x("QCANCEL", "q", "c" * 512), 0)

    def test_id_limits_everywhere(self):
        i512, i513 = "i" * 512, "i" * 513
        self.assertEqual(self.x("QPUT", "q", i512, "b", 0), 1)
        self.assertEqual(self.x("QPUTAT", "q", "j" * 512, "b", 0), 1)
        for cmd in ID_COMMANDS:
            args = {"QPUT": ["b", 0], "QPUTAT": ["b", 0], "QACK": [],
                    "QNACK": [0], "QEXTEND": [10], "QRESCHEDULE": [0],
                    "QCANCEL": []}[cmd]
            with self.subTest(cmd=cmd):
                self.err_raw(cmd, "q", i513, *args)
                self.err_raw(cmd, "q", "", *args)
        self.assertEqual(self.r.scard("q"), 2)
        got = self.x("QRESERVE", "q", 5, 60000)
        self.assertEqual(sorted(m[0] for m in got),
                         [i512.encode(), b"j" * 512])
        self.assertEqual(self.x("QACK", "q", i512, "j" * 512), 2)

    def test_qpeek(self):
        t = now_ms()
        self.x("QPUTAT", "q", "c", "C", t + 30000)
        self.x("QPUTAT", "q", "a", "A", t + 10000)
        self.x("QPUTAT", "q", "b1", "B1", t + 20000)
        self.x("QPUTAT", "q", "b2", "B2", t + 20000)   # same due: enqueue order
        self.x("QPUTAT", "q", "now", "N", t - 5)
        t_now = self.peek("q", 1)[0][2]   # t - 5, or when it was put
        self.assertTrue(t - 5 <= t_now <= now_ms(), (t, t_now))
        expect = [[b"now", b"N", t_now, 0], [b"a", b"A", t + 10000, 0],
                  [b"b1", b"B1", t + 20000, 0], [b"b2", b"B2", t + 20000, 0],
                  [b"c", b"C", t + 30000, 0]]
        before = qstat(self.r, "q")
        self.assertEqual(self.peek("q", 100), expect)
        self.assertEqual(self.peek("q", 2), expect[:2])
        self.assertEqual(self.peek("q", 0), [])
        self.assertEqual(self.peek("missing", 5), [])
        self.assertEqual(qstat(self.r, "q"), before, "QPEEK changed something")
        self.assertEqual(self.x("QRESERVE", "q", 1, 5000)[0][0], b"now")
        p = self.peek("q", 100)
        self.assertEqual(p[0][:2], [b"now", b"N"])
        self.assertEqual(p[0][3], 1)
        self.assertGreater(p[0][2], now_ms() + 4000)  # at its lease end
        self.assertEqual(p[1:], expect[1:])
        for bad in ("-1", "abc", "", "1.5"):
            with self.subTest(count=bad):
                self.err_raw("QPEEK", "q", bad)
        self.assertIn("wrong number of arguments", self.err("QPEEK", "q"))
        self.assertIn("wrong number of arguments",
                      self.err("QPEEK", "q", 1, 2))

    def test_qstat_situations(self):
        self.assertEqual(qstat(self.r, "q"), stat_fields())
        self.assertIn("wrong number of arguments", self.err("QSTAT"))
        self.assertIn("wrong number of arguments", self.err("QSTAT", "a", "b"))
        flat = self.x("QSTAT", "q")
        self.assertEqual([flat[i] for i in range(0, len(flat), 2)][:9],
                         [b"messages", b"ready", b"delayed", b"reserved",
                          b"next_due_ms", b"enqueued_total",
                          b"delivered_total", b"acked_total",
                          b"dead_lettered_total"])
        self.assertEqual(self.r.keys(), [], "QSTAT created a queue")
        t = now_ms()
        self.x("QPUTAT", "q", "r1", "x", t - 10)
        self.x("QPUTAT", "q", "r2", "x", t - 5)
        self.x("QPUTAT", "q", "d1", "x", t + 10000)
        self.x("QPUTAT", "q", "d2", "x", t + 20000)
        self.x("QPUTAT", "q", "d3", "x", t + 30000)
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=5, ready=2, delayed=3, next_due_ms=t + 10000,
            enqueued_total=5))
        self.x("QRESERVE", "q", 1, 60000)            # r1
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=5, ready=1, delayed=3, reserved=1, next_due_ms=t + 10000,
            enqueued_total=5, delivered_total=1))
        self.assertEqual(self.x("QACK", "q", "r1"), 1)
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=4, ready=1, delayed=3, next_due_ms=t + 10000,
            enqueued_total=5, delivered_total=1, acked_total=1))
        self.assertEqual(self.r.spop("q"), b"x")     # r2
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=3, delayed=3, next_due_ms=t + 10000,
            enqueued_total=5, delivered_total=2, acked_total=1))
        self.assertEqual(self.x("QCANCEL", "q", "d1"), 1)
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=2, delayed=2, next_due_ms=t + 20000,
            enqueued_total=5, delivered_total=2, acked_total=1))
        # promote d2 and reserve it with a lease that ends before d3
        self.x("QRESCHEDULE", "q", "d2", 0)
        t0 = now_ms()
        self.x("QRESERVE", "q", 5, 5000)
        t1 = now_ms()
        st = qstat(self.r, "q")
        lease_end = self.peek("q", 1)[0][2]
        self.assertTrue(t0 + 5000 <= lease_end <= t1 + 5000)
        self.assertEqual(st, stat_fields(
            messages=2, delayed=1, reserved=1, next_due_ms=lease_end,
            enqueued_total=5, delivered_total=3, acked_total=1))
        # the lease runs out: ready again, nothing reserved
        self.x("QEXTEND", "q", "d2", 50)
        time.sleep(0.1)
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=2, ready=1, delayed=1, next_due_ms=t + 30000,
            enqueued_total=5, delivered_total=3, acked_total=1))
        # a replacing QPUT (counted as an enqueue, see the module doc)
        self.assertEqual(self.x("QPUT", "q", "d3", "y", 0), 0)
        self.assertEqual(qstat(self.r, "q"), stat_fields(
            messages=2, ready=2, enqueued_total=6, delivered_total=3,
            acked_total=1))
        self.assertEqual(self.r.delete("q"), 1)
        self.assertEqual(qstat(self.r, "q")["messages"], 0)

    def test_qstat_while_leases_end(self):
        """The housekeeper ends leases that ran out while QSTAT reads: a
        message is never counted both reserved and ready (CI once saw
        ready 1, reserved 1, delayed 0 for two messages, one of them
        delayed)."""
        r = self.r
        self.x("QPUT", "q", "later", "x", 600000)
        bad = []
        for _ in range(40):
            self.x("QPUT", "q", "m", "x", 0)
            self.assertEqual(len(self.x("QRESERVE", "q", 1, 30)), 1)
            deadline = time.monotonic() + 0.25
            while time.monotonic() < deadline:
                st = qstat(r, "q")
                if (st["messages"] != 2 or st["delayed"] != 1 or
                        st["ready"] + st["reserved"] != 1):
                    bad.append(st)
        self.assertEqual(bad[:3], [])

    def test_missing_queue_everywhere(self):
        r = self.r
        self.assertEqual(self.x("QRESERVE", "nq", 5, 1000), [])
        self.assertEqual(self.x("QACK", "nq", "a"), 0)
        self.assertEqual(self.x("QNACK", "nq", "a", 0), 0)
        self.assertEqual(self.x("QEXTEND", "nq", "a", 10), 0)
        self.assertEqual(self.x("QRESCHEDULE", "nq", "a", 0), 0)
        self.assertEqual(self.x("QCANCEL", "nq", "a"), 0)
        self.assertEqual(self.x("QPEEK", "nq", 5), [])
        self.assertEqual(qstat(r, "nq"), stat_fields())
        self.assertEqual(self.x("QRESERVE", "nq", 5, 1000, "BLOCK", 10), [])
        self.assertEqual(r.keys(), [])
        self.assertEqual(r.dbsize(), 0)

    def test_redis_cli(self):
        cli = self.srv.cli
        self.assertEqual(cli("QPUT", "c", "o1", "hello", "0").strip(), "1")
        self.assertEqual(cli("QPUT", "c", "o1", "hello2", "0").strip(), "0")
        out = cli("QADD", "c", "m", "60000").strip()
        self.assertRegex(out.encode(), SERVER_ID)
        self.assertEqual(cli("QRESERVE", "c", "5", "60000").split(),
                         ["o1", "hello2", "1"])
        st = cli("QSTAT", "c").split("\n")
        self.assertEqual(st[:10], ["messages", "2", "ready", "0", "delayed",
                                   "1", "reserved", "1", "next_due_ms",
                                   st[9]])
        self.assertEqual(cli("QACK", "c", "o1", "o2").strip(), "1")
        self.assertEqual(cli("QCANCEL", "c", out).strip(), "1")
        self.assertEqual(cli("QPEEK", "c", "5").strip(), "")
        self.assertIn("ERR", cli("QRESERVE", "c", "1", "0"))
        self.assertIn("ERR", cli("QPUT", "c", "", "b", "0"))


class Leases(Base):

    def test_expiry_and_redelivery_counts(self):
        mid = self.x("QADD", "q", "job", 0)[0]
        sent = got_at = None
        for n in (1, 2, 3):
            deadline = time.monotonic() + 3
            while True:
                t_send = time.monotonic()
                got = self.x("QRESERVE", "q", 1, 200)
                t_recv = time.monotonic()
                if got or t_recv > deadline:
                    break
                time.sleep(0.005)
            self.assertEqual(got, [[mid, b"job", n]])
            if sent is not None:
                # The server reserved after the last request was sent and
                # delivered again before this reply came: that span holds
                # the whole lease (a loaded machine's latencies make the
                # send-to-send span shorter, with nothing early).
                self.assertGreaterEqual(t_recv - sent, 0.2 - 0.002,
                                        "redelivered before the lease end")
                self.assertLess(t_send - got_at, 0.5)
            sent, got_at = t_send, t_recv
            self.assertEqual(self.x("QRESERVE", "q", 1, 200), [])
        st = qstat(self.r, "q")
        self.assertEqual((st["delivered_total"], st["reserved"],
                          st["messages"]), (3, 1, 1))
        self.assertEqual(self.x("QACK", "q", mid), 1)
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["acked_total"]), (0, 1))

    def test_expired_lease_is_ready_and_ack_late(self):
        mid = self.x("QADD", "q", "m", 0)[0]
        self.x("QRESERVE", "q", 1, 100)
        time.sleep(0.35)   # the housekeeper has ended the lease by now
        st = qstat(self.r, "q")
        self.assertEqual((st["ready"], st["reserved"]), (1, 0))
        self.assertEqual(self.x("QACK", "q", mid), 0,
                         "a lease that ran out cannot be acked")
        self.assertEqual(self.x("QRESERVE", "q", 1, 100), [[mid, b"m", 2]])

    def test_ack_after_restart(self):
        ids = self.x("QADD", "q", "a", 0, "b", 0, "c", 0)
        self.assertEqual(len(self.x("QRESERVE", "q", 2, 60000)), 2)
        self.srv.stop()
        self.srv.start()
        r = self.srv.client()
        st = qstat(r, "q")
        self.assertEqual((st["messages"], st["reserved"], st["ready"],
                          st["delivered_total"]), (3, 2, 1, 2))
        self.assertEqual(r.execute_command("QRESERVE", "q", 5, 60000),
                         [[ids[2], b"c", 1]])
        self.assertEqual(r.execute_command("QACK", "q", ids[0]), 1)
        self.assertEqual(r.execute_command("QACK", "q", ids[1], ids[2]), 2)
        self.assertEqual(r.scard("q"), 0)
        self.assertEqual(qstat(r, "q")["acked_total"], 3)

    def test_reservation_survives_crash_and_expires(self):
        mid = self.x("QADD", "q", "m", 0)[0]
        t_res = time.monotonic()
        self.assertEqual(self.x("QRESERVE", "q", 1, 2500), [[mid, b"m", 1]])
        self.srv.kill9()
        self.srv.start()
        r = self.srv.client()
        self.assertLess(time.monotonic() - t_res, 2.0, "restart too slow")
        self.assertEqual(r.execute_command("QRESERVE", "q", 1, 1000), [],
                         "a reservation was lost in the restart")
        self.assertEqual(qstat(r, "q")["reserved"], 1)
        got = r.execute_command("QRESERVE", "q", 1, 1000, "BLOCK", 5000)
        took = time.monotonic() - t_res
        self.assertEqual(got, [[mid, b"m", 2]])
        self.assertGreaterEqual(took, 2.5 - 0.01)
        self.assertEqual(r.execute_command("QACK", "q", mid), 1)


class Race(Base):
    server_kw = dict(workers=3)

    def test_racing_consumers_never_share_a_delivery(self):
        N, THREADS, LEASE = 3000, 8, 700
        r = self.r
        for i in range(0, N, 500):
            args = []
            for j in range(i, min(N, i + 500)):
                args += ["m%d" % j, 0]
            r.execute_command("QADD", "q", *args)
        ids = {m[0]: m[1] for m in r.execute_command("QPEEK", "q", N)}
        self.assertEqual(len(ids), N)
        conns = list(dqtest.clients_on_workers(self.srv, 3).values())
        while len(conns) < THREADS:
            conns.append(self.srv.client())
        workers = {dqtest.worker_of(c) for c in conns}
        self.assertGreaterEqual(len(workers), 2)
        lock = threading.Lock()
        seen = []          # (id, deliveries, t_send, t_recv, thread)
        errors = []
        acked = [0]
        stop = threading.Event()

        def consumer(k, c):
            try:
                while not stop.is_set():
                    count = 1 + k % 4
                    t_send = time.monotonic()
                    got = c.execute_command("QRESERVE", "q", count, LEASE)
                    t_recv = time.monotonic()
                    if not got:
                        time.sleep(0.01)
                        continue
                    with lock:
                        for mid, body, n in got:
                            seen.append((mid, n, t_send, t_recv, k))
                    # ack unless the message "fails": a fixed choice per
                    # (id, delivery) so that some come back once or twice
                    ack = [m[0] for m in got
                           if m[2] >= 3 or zlib.crc32(m[0] + bytes([m[2]]))
                           % 4 != 0]
                    if ack:
                        n = c.execute_command("QACK", "q", *ack)
                        with lock:
                            acked[0] += n
                        if n != len(ack):
                            errors.append("QACK of %d live leases gave %d"
                                          % (len(ack), n))
            except Exception as e:   # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=consumer, args=(k, c))
                   for k, c in enumerate(conns[:THREADS])]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        deadline = t0 + 25
        while time.monotonic() < deadline and r.scard("q") > 0:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(10)
        print("\n%d consumers on %d workers: %d deliveries of %d messages "
              "in %.2f s" % (THREADS, len(workers), len(seen), N,
                             time.monotonic() - t0))
        self.assertEqual(errors, [])
        self.assertEqual(r.scard("q"), 0, "not everything was acked")
        self.assertEqual(acked[0], N)
        pairs = [(s[0], s[1]) for s in seen]
        self.assertEqual(len(pairs), len(set(pairs)),
                         "an (id, deliveries) pair was delivered twice")
        by_id = {}
        for s in seen:
            by_id.setdefault(s[0], []).append(s)
        self.assertEqual(set(by_id), set(ids))
        redelivered = 0
        for mid, lst in by_id.items():
            lst.sort(key=lambda s: s[1])
            self.assertEqual([s[1] for s in lst], list(range(1, len(lst) + 1)),
                             "delivery counts of %r" % mid)
            for a, b in zip(lst, lst[1:]):
                redelivered += 1
                # b was received no earlier than a's lease could end
                self.assertGreaterEqual(
                    b[3] - a[2], LEASE / 1000.0 - 0.005,
                    "%r delivered again %.3f s after a %d ms lease"
                    % (mid, b[3] - a[2], LEASE))
        self.assertGreater(redelivered, 100)
        st = qstat(r, "q")
        self.assertEqual((st["messages"], st["reserved"], st["acked_total"],
                          st["delivered_total"], st["enqueued_total"]),
                         (0, 0, N, len(seen), N))


class DeadLetters(Base):
    server_kw = dict(max_deliveries=3)

    def exhaust(self, q, mid, body, lease=50):
        for n in (1, 2, 3):
            got = self.wait_for(lambda: self.x("QRESERVE", q, 1, lease))
            self.assertEqual(got, [[mid, body, n]])

    def test_dead_letter_by_consumer(self):
        mid = self.x("QADD", "q", "poison", 0)[0]
        other = self.x("QADD", "q", "fine", 60000)[0]
        self.exhaust("q", mid, b"poison")
        time.sleep(0.07)
        # the next consumer (or the housekeeper) moves it to q:dead
        self.assertEqual(self.x("QRESERVE", "q", 5, 1000), [])
        p = self.peek("q:dead")
        self.assertEqual(len(p), 1)
        self.assertEqual((p[0][0], p[0][1], p[0][3]), (mid, b"poison", 3))
        self.assertLessEqual(p[0][2], now_ms())
        st = qstat(self.r, "q")
        self.assertEqual(st, stat_fields(
            messages=1, delayed=1, next_due_ms=self.peek("q")[0][2],
            enqueued_total=2, delivered_total=3, dead_lettered_total=1))
        dst = qstat(self.r, "q:dead")
        self.assertEqual((dst["messages"], dst["ready"], dst["reserved"]),
                         (1, 1, 0))
        self.assertIn(b"q:dead", self.r.keys())
        self.assertEqual(self.x("QACK", "q", mid), 0)
        self.assertEqual(self.x("QCANCEL", "q", mid), 0, "still in q")
        self.assertEqual(self.x("QCANCEL", "q", other), 1)

    def test_dead_letter_by_housekeeper(self):
        mid = self.x("QADD", "h", "poison", 0)[0]
        self.exhaust("h", mid, b"poison")
        # nobody touches h: within ~100 ms of the lease end it moves
        p = self.wait_for(lambda: self.peek("h:dead"), timeout=1.0)
        self.assertEqual([(m[0], m[1], m[3]) for m in p],
                         [(mid, b"poison", 3)])
        self.assertEqual(self.peek("h"), [])
        st = qstat(self.r, "h")
        self.assertEqual((st["messages"], st["dead_lettered_total"],
                          st["reserved"], st["ready"]), (0, 1, 0, 0))

    def test_dead_queue_reschedule_and_cancel(self):
        a = self.x("QADD", "q", "a", 0)[0]
        self.exhaust("q", a, b"a")
        b = self.x("QPUT", "q", "order-7", "b", 0)
        self.assertEqual(b, 1)
        self.exhaust("q", b"order-7", b"b")
        time.sleep(0.07)
        self.assertEqual(self.x("QRESERVE", "q", 5, 1000), [])
        dead = {m[0]: m for m in self.peek("q:dead")}
        self.assertEqual(set(dead), {a, b"order-7"})
        self.assertEqual(qstat(self.r, "q")["dead_lettered_total"], 2)
        # re-queue in the dead queue: later, then now
        t0 = now_ms()
        self.assertEqual(self.x("QRESCHEDULE", "q:dead", a, 60000), 1)
        p = {m[0]: m for m in self.peek("q:dead")}
        self.assertGreaterEqual(p[a][2], t0 + 60000)
        got = self.x("QRESERVE", "q:dead", 5, 60000)
        self.assertEqual([m[:2] for m in got], [[b"order-7", b"b"]])
        self.assertEqual(self.x("QACK", "q:dead", b"order-7"), 1)
        self.assertEqual(self.x("QRESCHEDULE", "q:dead", a, 0), 1)
        self.assertEqual([m[:2] for m in self.peek("q:dead")], [[a, b"a"]])
        self.assertEqual(self.x("QCANCEL", "q:dead", a), 1)
        self.assertEqual(self.peek("q:dead"), [])
        self.assertEqual(self.r.scard("q:dead"), 0)
        # the producer's id can be reused in the original queue
        self.assertEqual(self.x("QPUT", "q", "order-7", "b2", 0), 1)

    def test_dead_queue_of_a_name_at_the_limit(self):
        """A queue name of 4096 bytes, the limit: its dead queue's name is
        4101.  Its letters used to be stuck: SPOP and QRESERVE failed with
        a storage error (the name did not fit the buffer read into), BSPOP
        and QPUT refused the name."""
        q = "M" * 4096
        dq = q + ":dead"
        mids = {}
        for q1 in (q, "N" * 4092):
            mids[q1] = mid = self.x("QADD", q1, "poison", 0)[0]
            self.exhaust(q1, mid, b"poison")
            p = self.wait_for(lambda: self.peek(q1 + ":dead"), timeout=2.0)
            self.assertEqual([(m[0], m[1], m[3]) for m in p],
                             [(mid, b"poison", 3)])
        got = self.x("QRESERVE", dq, 1, 50)
        self.assertEqual(got, [[mids[q], b"poison", 4]])
        # a dead letter is not dead-lettered again: due again after its
        # lease, taken by SPOP and by BSPOP
        self.assertEqual(self.wait_for(lambda: self.r.execute_command(
            "SPOP", dq)), b"poison")
        self.assertEqual(self.x("QPUT", dq, "again", "b", 0), 1)
        self.assertEqual(self.r.execute_command("BSPOP", dq, 1),
                         [dq.encode(), b"b"])
        self.assertEqual(self.r.scard(dq), 0)
        # the limit itself stays: 4097 bytes, or 4101 not ending in :dead
        for name in ("M" * 4097, "M" * 4096 + ":deaf"):
            with self.assertRaises(redis.ResponseError) as e:
                self.x("QADD", name, "x", 0)
            self.assertIn("longer than the limit of 4096", str(e.exception))
        with self.assertRaises(redis.ResponseError):
            self.x("QADD", "M" * 4097 + ":dead", "x", 0)
        self.assertEqual(self.r.scard("N" * 4092 + ":dead"), 1)

    def test_ack_on_last_delivery_is_not_dead(self):
        mid = self.x("QADD", "q", "m", 0)[0]
        for n in (1, 2):
            got = self.wait_for(lambda: self.x("QRESERVE", "q", 1, 50))
            self.assertEqual(got, [[mid, b"m", n]])
        got = self.wait_for(lambda: self.x("QRESERVE", "q", 1, 60000))
        self.assertEqual(got, [[mid, b"m", 3]])
        self.assertEqual(self.x("QACK", "q", mid), 1)
        time.sleep(0.2)
        self.assertEqual(self.peek("q:dead"), [])
        self.assertEqual(qstat(self.r, "q")["dead_lettered_total"], 0)

    def test_nack_after_last_delivery(self):
        """Given back after its last allowed delivery, whatever the delay:
        in the dead queue at once, counted, and nowhere else."""
        mid = self.x("QADD", "q", "m", 0)[0]
        for n in (1, 2, 3):
            got = self.x("QRESERVE", "q", 1, 60000)
            self.assertEqual(got, [[mid, b"m", n]])
            self.assertEqual(self.x("QNACK", "q", mid, 3600000 if n == 3
                                    else 0), 1)
        p = self.peek("q:dead")
        self.assertEqual([(m[0], m[1], m[3]) for m in p], [(mid, b"m", 3)])
        self.assertLessEqual(p[0][2], now_ms())
        st = qstat(self.r, "q")
        self.assertEqual((st["messages"], st["reserved"], st["ready"],
                          st["dead_lettered_total"]), (0, 0, 0, 1))
        self.assertEqual(self.x("QNACK", "q", mid, 0), 0)
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000), [])
        # a dead letter given back is delivered again: no dead of dead
        got = self.x("QRESERVE", "q:dead", 1, 60000)
        self.assertEqual(got, [[mid, b"m", 4]])
        self.assertEqual(self.x("QNACK", "q:dead", mid, 0), 1)
        self.assertEqual([m[0] for m in self.peek("q:dead")], [mid])
        self.assertEqual(self.peek("q:dead:dead"), [])

    def test_nack_before_last_delivery_is_not_dead(self):
        mid = self.x("QADD", "q", "m", 0)[0]
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000), [[mid, b"m", 1]])
        self.assertEqual(self.x("QNACK", "q", mid, 0), 1)
        self.assertEqual(self.peek("q:dead"), [])
        self.assertEqual(self.x("QRESERVE", "q", 1, 60000), [[mid, b"m", 2]])


class KillWorker(dqtest.TestCase):

    def check(self, durability):
        srv = self.server(workers=2, durability=durability)
        conns = dqtest.clients_on_workers(srv, 2)
        (victim, vc), (_, sc) = list(conns.items())
        ids = sc.execute_command("QADD", "q", *sum(
            (["m%d" % i, 0] for i in range(20)), []))
        t_res = time.monotonic()
        got = vc.execute_command("QRESERVE", "q", 20, 1000)
        self.assertEqual([m[0] for m in got], ids)
        os.kill(victim, signal.SIGKILL)
        # the survivor keeps serving; the messages are reserved, not lost
        back = []
        deadline = time.monotonic() + 8
        while len(back) < 20 and time.monotonic() < deadline:
            try:
                back += sc.execute_command("QRESERVE", "q", 20, 60000,
                                           "BLOCK", 500)
            except redis.ConnectionError:
                sc = srv.client()    # a pool restart is allowed
            if back:
                self.assertGreaterEqual(time.monotonic() - t_res, 1.0 - 0.01,
                                        "returned before the lease end")
        took = time.monotonic() - t_res
        print("\n%s: %d messages back %.3f s after QRESERVE (lease 1 s) "
              "and kill -9 of worker %d" % (durability, len(back), took,
                                           victim))
        self.assertEqual(sorted(m[0] for m in back), sorted(ids))
        self.assertEqual({m[2] for m in back}, {2})
        self.assertEqual({m[1] for m in back},
                         {b"m%d" % i for i in range(20)})
        self.assertEqual(sc.execute_command("QACK", "q", *ids), 20)
        self.assertEqual(sc.scard("q"), 0)

    def test_kill9_worker_between_reserve_and_ack_write(self):
        self.check("write")

    def test_kill9_worker_between_reserve_and_ack_fsync(self):
        self.check("fsync")


if __name__ == "__main__":
    dqtest.main()
