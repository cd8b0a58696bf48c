#!/usr/bin/env python3
"""Deadlock retries, driven at will with DEBUG DEADLOCK: whatever Berkeley
DB does to a transaction, every command is answered, once, and runs once.

A worker runs its clients' commands in one transaction (a batch); a batch
picked as a deadlock victim is rewound and run again, halving its size;
after 16 tries every command runs alone, retried up to 1000 times.  Real
deadlocks need two workers colliding, which happens by luck (the load of
test_multi's test_exec_reads_one_state once left clients without any reply
when a batch lost 16 times); DEBUG DEADLOCK n makes the next n commits of
the worker fail the same way."""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402
import redis  # noqa: E402
from dqtest import resp_cmd, resp_parse_all  # noqa: E402

BATCH_ATTEMPTS = 16     # worker.c


def cmds(*commands):
    return b"".join(resp_cmd(*c) for c in commands)


class Refused(dqtest.ServerCase):
    def test_refused_unless_enabled(self):
        self.assertEqual(self.x("CONFIG", "GET", "enable_debug_command"),
                         [b"enable_debug_command", b"no"])
        for args in (("DEBUG", "DEADLOCK", "1"), ("DEBUG", "HELP"),
                     ("DEBUG", "nonsense")):
            self.assertEqual(self.err(*args), "DEBUG command not allowed: "
                             "set enable_debug_command = true in the "
                             "configuration file")
        # nothing was injected: writes commit at the first try
        self.assertEqual(self.x("SADD", "q", "m", 0), 1)
        self.assertEqual(self.r.info("stats")["batch_retries"], 0)


class Retries(dqtest.ServerCase):
    server_kw = {"workers": 1, "enable_debug_command": True}

    def setUp(self):
        super().setUp()
        self.sock = self.srv.connect()
        self.addCleanup(self.sock.close)

    def send(self, *commands, timeout=10):
        data = cmds(*commands)
        return resp_parse_all(self.srv.raw(data, sock=self.sock,
                                           timeout=timeout))

    def deadlocks(self, n):
        self.assertEqual(self.send(("DEBUG", "DEADLOCK", str(n))), ["OK"])

    def retries(self):
        return self.r.info("stats")["batch_retries"]

    def test_arguments(self):
        self.assertEqual(self.err("DEBUG", "DEADLOCK", "-1"),
                         "count must be from 0 to 1000000")
        self.assertEqual(self.err("DEBUG", "DEADLOCK", "1000001"),
                         "count must be from 0 to 1000000")
        self.assertEqual(self.err("DEBUG", "DEADLOCK", "x"),
                         "value is not an integer or out of range")
        self.assertEqual(self.err("DEBUG", "DEADLOCK"),
                         "wrong number of arguments for 'debug|deadlock' "
                         "command")
        self.assertEqual(self.err("DEBUG", "DEADLOCK", "1", "2"),
                         "wrong number of arguments for 'debug|deadlock' "
                         "command")
        self.assertEqual(self.err("DEBUG", "help", "x"),
                         "wrong number of arguments for 'debug|help' command")
        self.assertEqual(self.err("DEBUG", "sleep", "1"),
                         "unknown subcommand 'sleep'. Try DEBUG HELP.")
        self.assertEqual(self.err("DEBUG"),
                         "wrong number of arguments for 'debug' command")
        help_ = self.x("DEBUG", "HELP")
        self.assertTrue(help_[0].startswith(b"DEBUG <subcommand>"))
        self.assertIn(b"DEADLOCK <count>", help_)
        # none of that injected anything
        self.assertEqual(self.x("SADD", "q", "m", 0), 1)
        self.assertEqual(self.retries(), 0)

    def test_zero_clears(self):
        self.deadlocks(5)
        self.deadlocks(0)
        self.assertEqual(self.send(("SADD", "q", "m", "0")), [1])
        self.assertEqual(self.retries(), 0)

    def test_batch_run_again(self):
        self.deadlocks(3)
        self.assertEqual(self.send(("SADD", "q", "a", "0"),
                                   ("SADD", "q", "b", "0", "c", "0"),
                                   ("SCARD", "q")), [1, 2, 3])
        self.assertEqual(self.retries(), 3)
        self.assertEqual(self.x("SPOP", "q", 10), [b"a", b"b", b"c"])

    def test_batch_that_always_loses_runs_alone(self):
        """16 lost batches: the commands run one by one, and are answered
        (they once stayed unanswered, waiting for a next request)."""
        self.deadlocks(BATCH_ATTEMPTS)
        self.assertEqual(self.send(("SADD", "q", "a", "0"),
                                   ("SADD", "q", "b", "0"),
                                   ("SPOP", "q"),
                                   ("SCARD", "q"), timeout=20),
                         [1, 1, b"a", 1])
        self.assertEqual(self.retries(), BATCH_ATTEMPTS)
        self.assertEqual(self.x("SPOP", "q", 10), [b"b"])

    def test_commands_alone_retried(self):
        self.deadlocks(BATCH_ATTEMPTS + 5)
        self.assertEqual(self.send(("SADD", "q", "a", "0"),
                                   ("SADD", "q", "b", "0"), timeout=20),
                         [1, 1])
        self.assertEqual(self.retries(), BATCH_ATTEMPTS + 5)
        self.assertEqual(self.x("SPOP", "q", 10), [b"a", b"b"])

    def test_exec_run_again(self):
        for n in (2, BATCH_ATTEMPTS, BATCH_ATTEMPTS + 3):
            with self.subTest(deadlocks=n):
                self.r.delete("q")
                self.deadlocks(n)
                self.assertEqual(self.send(
                    ("MULTI",), ("SADD", "q", "a", "0"),
                    ("SADD", "q", "b", "0"), ("SCARD", "q"), ("EXEC",),
                    ("CLIENT", "INFO"), timeout=20)[:5],
                    ["OK", "QUEUED", "QUEUED", "QUEUED", [1, 1, 2]])
                self.assertEqual(self.r.scard("q"), 2)
                info = self.send(("CLIENT", "INFO"))[0]
                self.assertIn(b" multi=-1 ", info)
                # the connection is out of MULTI: commands run at once
                self.assertEqual(self.send(("SCARD", "q")), [2])

    def test_exec_retried_alone_then_more_commands(self):
        """An EXEC run alone again after a deadlock (its MULTI restored),
        a second MULTI in the same request after it."""
        self.deadlocks(BATCH_ATTEMPTS + 1)
        out = self.send(("MULTI",), ("SADD", "q", "a", "0"), ("EXEC",),
                        ("MULTI",), ("SADD", "q", "b", "0"), ("EXEC",),
                        ("SPOP", "q", "5"), timeout=20)
        self.assertEqual(out, ["OK", "QUEUED", [1], "OK", "QUEUED", [1],
                               [b"a", b"b"]])

    def test_storage_busy_after_1000_deadlocks_alone(self):
        """A command that never gets through: after 16 batches and 1000
        attempts alone (pauses of 0.1 ms more each time, 10 ms at most:
        about 10 s), "storage busy" and nothing changed; the next commands
        of the same request run."""
        self.deadlocks(BATCH_ATTEMPTS + 1000)
        out = self.send(("SADD", "q", "a", "0"), ("SADD", "q", "b", "0"),
                        ("SCARD", "q"), timeout=60)
        self.assertEqual(out[0], "ERR storage busy: a deadlock repeated "
                         "1000 times, nothing was changed")
        self.assertEqual(out[1:], [1, 1])
        self.assertIn("deadlocked 1000 times", self.srv.logs())

    def test_other_clients_answered(self):
        """The worker's other clients lose nothing to the retries."""
        other = self.srv.connect()
        self.addCleanup(other.close)
        self.deadlocks(BATCH_ATTEMPTS + 2)
        data = cmds(*[("SADD", "o", "m%d" % i, "0") for i in range(200)])
        other.sendall(data)
        mine = self.send(*[("SADD", "q", "m%d" % i, "0") for i in range(50)],
                         timeout=20)
        theirs = resp_parse_all(dqtest.read_raw(other, timeout=20,
                                                replies=200))
        self.assertEqual((mine, theirs), ([1] * 50, [1] * 200))
        self.assertEqual((self.r.scard("q"), self.r.scard("o")), (50, 200))

    def test_blocking_pop_under_retries(self):
        self.deadlocks(BATCH_ATTEMPTS + 1)
        self.assertEqual(self.send(("SADD", "q", "a", "0"),
                                   ("BSPOP", "q", "1"), timeout=20),
                         [1, [b"q", b"a"]])
        self.assertEqual(self.r.scard("q"), 0)


class LockTable(dqtest.ServerCase):
    """A command touching more pages than Berkeley DB's lock table (20000
    locks) holds fails alone, with the reason, and changes nothing; the
    other clients' commands go on (one whose lock request found the table
    full while the big one held it runs again)."""
    server_kw = {"workers": 2}

    def test_too_many_ids_for_the_lock_table(self):
        r = self.r
        n = 300000    # pages of msgs.db and ids.db: more than locks
        body = "b" * 100
        p = r.pipeline(transaction=False)
        for i in range(n):
            p.execute_command("QPUT", "big", "id%d" % i, body,
                              3600000 + (i * 7919) % 86400000)
            if i % 10000 == 9999:
                p.execute()
                p = r.pipeline(transaction=False)
        p.execute()
        others = [c for _, c in dqtest.clients_on_workers(self.srv, 2).items()]
        ids = ["id%d" % i for i in range(n)]
        random.Random(1).shuffle(ids)     # scattered over the pages
        # Reading 100,000 ids' pages until the table runs out takes a few
        # seconds alone, more than the usual 10 s timeout beside a loaded
        # make check.
        big = self.srv.client(socket_timeout=120)
        t0 = time.monotonic()
        with self.assertRaises(redis.ResponseError) as e:
            big.execute_command("QCANCEL", "big", *ids[:100000])
        print("\n  refused after %.1f s" % (time.monotonic() - t0))
        self.assertIn("needs more locks than Berkeley DB's lock table "
                      "holds (20000); send fewer ids at a time",
                      str(e.exception))
        self.assertEqual(r.scard("big"), n)
        # in parts it works, and the others were never refused
        for c in others:
            self.assertEqual(c.execute_command("SADD", "small", "x", 0), 1)
        done = 0
        for i in range(0, 100000, 5000):
            done += r.execute_command("QCANCEL", "big", *ids[i:i + 5000])
        self.assertEqual((done, r.scard("big")), (100000, n - 100000))


if __name__ == "__main__":
    dqtest.main()
