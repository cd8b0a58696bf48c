#!/usr/bin/env python3
"""MULTI, EXEC and DISCARD: redis-py's default pipeline (and ioredis' and
node-redis' multi()) send MULTI ... EXEC; the commands between must run
together or not at all, with Redis' replies."""

import os
import re
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402
from dqtest import resp_cmd, resp_parse_all  # noqa: E402


class Multi(dqtest.ServerCase):
    server_kw = {"workers": 2}

    def test_pipeline_transaction(self):
        p = self.r.pipeline()       # transaction=True: MULTI ... EXEC
        p.execute_command("SADD", "q", "a", 0)
        p.execute_command("SADD", "q", "b", 0, "c", 0)
        p.execute_command("SCARD", "q")
        p.execute_command("SPOP", "q", 2)
        p.execute_command("QSTAT", "nothing")
        self.assertEqual(p.execute(), [1, 2, 3, [b"a", b"b"],
                                       self.x("QSTAT", "nothing")])
        self.assertEqual(self.x("SCARD", "q"), 1)

    def test_raw_replies_as_redis(self):
        out = self.srv.raw(resp_cmd("MULTI") + resp_cmd("SADD", "q", "m", 0) +
                           resp_cmd("PING") + resp_cmd("EXEC"))
        self.assertEqual(out, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"
                         b"*2\r\n:1\r\n+PONG\r\n")
        out = self.srv.raw(resp_cmd("MULTI") + resp_cmd("EXEC"))
        self.assertEqual(out, b"+OK\r\n*0\r\n")

    def test_refused_command_aborts(self):
        for bad in (("NOSUCH", "x"), ("SADD", "q"), ("SPOP",)):
            with self.subTest(bad=bad):
                out = resp_parse_all(self.srv.raw(
                    resp_cmd("MULTI") + resp_cmd("SADD", "q", "m", 0) +
                    resp_cmd(*bad) + resp_cmd("SADD", "q", "n", 0) +
                    resp_cmd("EXEC")))
                self.assertEqual(out[:2], ["OK", "QUEUED"])
                self.assertIsInstance(out[2], dqtest.RespError)
                self.assertEqual(out[3], "QUEUED")
                self.assertEqual(str(out[4]), "EXECABORT Transaction "
                                 "discarded because of previous errors.")
                self.assertEqual(self.x("SCARD", "q"), 0)
        p = self.r.pipeline()
        p.execute_command("SADD", "q", "a", 0)
        p.execute_command("NOSUCH")
        with self.assertRaises(redis.ResponseError):
            p.execute()
        self.assertEqual(self.x("SCARD", "q"), 0)

    def test_errors_at_run_time_are_in_the_array(self):
        p = self.r.pipeline()
        p.execute_command("SADD", "q", "a", 0)
        p.execute_command("SADD", "q", "b", "soon")
        p.execute_command("QACK", "q", "no-such-id")
        p.execute_command("SCARD", "q")
        v = p.execute(raise_on_error=False)
        self.assertEqual(v[0], 1)
        self.assertIsInstance(v[1], redis.ResponseError)
        self.assertIn("invalid delay_ms", str(v[1]))
        self.assertEqual(v[2:], [0, 1])

    def test_misuse(self):
        out = resp_parse_all(self.srv.raw(
            resp_cmd("EXEC") + resp_cmd("DISCARD") + resp_cmd("MULTI") +
            resp_cmd("MULTI") + resp_cmd("SADD", "q", "m", 0) +
            resp_cmd("DISCARD") + resp_cmd("EXEC") +
            resp_cmd("MULTI", "x") + resp_cmd("SCARD", "q")))
        self.assertEqual([text(v) for v in out], [
            "ERR EXEC without MULTI", "ERR DISCARD without MULTI",
            "OK", "ERR MULTI calls can not be nested", "QUEUED", "OK",
            "ERR EXEC without MULTI",
            "ERR wrong number of arguments for 'multi' command", "0"])

    def test_exec_with_arguments_ends_the_transaction(self):
        # As Redis: a refused EXEC answers EXECABORT with the reason and
        # discards the transaction, whose commands never run.
        out = resp_parse_all(self.srv.raw(
            resp_cmd("MULTI") + resp_cmd("SADD", "q", "m", 0) +
            resp_cmd("EXEC", "x") + resp_cmd("EXEC") +
            resp_cmd("SCARD", "q") + resp_cmd("MULTI") +
            resp_cmd("DISCARD", "x") + resp_cmd("EXEC")))
        self.assertEqual([text(v) for v in out], [
            "OK", "QUEUED",
            "EXECABORT Transaction discarded because of: wrong number of "
            "arguments for 'exec' command",
            "ERR EXEC without MULTI", "0", "OK",
            "ERR wrong number of arguments for 'discard' command",
            "EXECABORT Transaction discarded because of previous errors."])

    def test_blocking_commands_do_not_wait(self):
        t0 = time.monotonic()
        p = self.r.pipeline()
        p.execute_command("BSPOP", "empty", 0)
        p.execute_command("QRESERVE", "empty", 10, 1000, "BLOCK", 0)
        p.execute_command("SADD", "later", "m", 0)
        p.execute_command("BSPOP", "later", 0)
        self.assertEqual(p.execute(), [None, [], 1, [b"later", b"m"]])
        self.assertLess(time.monotonic() - t0, 5)
        # the connection is not left blocked
        self.assertTrue(self.r.ping())

    def test_across_round_trips_and_disconnect(self):
        s = self.srv.connect()
        self.assertEqual(self.srv.raw(resp_cmd("MULTI"), sock=s), b"+OK\r\n")
        self.assertEqual(self.srv.raw(resp_cmd("QPUT", "q", "id1", "a", 0),
                                      sock=s), b"+QUEUED\r\n")
        self.assertEqual(self.x("SCARD", "q"), 0)   # not run before EXEC
        self.assertEqual(self.srv.raw(resp_cmd("EXEC"), sock=s),
                         b"*1\r\n:1\r\n")
        self.assertEqual(self.x("SCARD", "q"), 1)
        # a client that leaves inside MULTI leaves nothing behind
        self.srv.raw(resp_cmd("MULTI") + resp_cmd("QCANCEL", "q", "id1"),
                     sock=s)
        s.close()
        time.sleep(0.2)
        self.assertEqual(self.x("SCARD", "q"), 1)

    def test_quit_inside_multi(self):
        out = self.srv.raw(resp_cmd("MULTI") + resp_cmd("SADD", "q", "m", 0) +
                           resp_cmd("QUIT") + resp_cmd("EXEC"), replies=3)
        self.assertEqual(out, b"+OK\r\n+QUEUED\r\n+OK\r\n")
        self.assertEqual(self.x("SCARD", "q"), 0)

    def test_too_large(self):
        s = self.srv.connect(timeout=20)
        body = b"x" * (1024 * 1024)
        cmds = resp_cmd("MULTI")
        for _ in range(24):
            cmds += resp_cmd("SADD", "big", body, 0)
        cmds += resp_cmd("EXEC") + resp_cmd("PING")
        out = resp_parse_all(self.srv.raw(cmds, sock=s, timeout=20))
        s.close()
        self.assertEqual(out[0], "OK")
        errors = [str(v) for v in out[1:25] if isinstance(v, dqtest.RespError)]
        self.assertTrue(errors and errors[0].startswith(
            "ERR transaction too large"), out[1:25])
        self.assertTrue(str(out[25]).startswith("EXECABORT"), out[25])
        self.assertEqual(out[26], "PONG")
        self.assertEqual(self.x("SCARD", "big"), 0)

    def test_redis_cli(self):
        out = self.srv.cli(input=b"multi\nsadd q m 0\nscard q\nexec\n")
        self.assertEqual(out.split(), ["OK", "QUEUED", "QUEUED", "1", "1"])

    def test_atomic_under_concurrency(self):
        """Producers on both workers add ten messages and a pair per
        EXEC and take the pair back; consumers reserve, queue their QACKs
        after MULTI and send EXEC in a later round trip, so that batches
        that deadlock (they do, here) are run again with a transaction
        opened in an earlier batch.  Readers never see an odd number of
        pairs, and every message is taken exactly once."""
        clients = spread(self.srv, 6)
        stop = threading.Event()
        errors, taken, odd = [], [], []

        def producer(c, w):
            try:
                for i in range(200):
                    p = c.pipeline()
                    p.execute_command("QADD", "rq", *sum(
                        (["%d-%d-%d" % (w, i, j), 0] for j in range(10)), []))
                    p.execute_command("SADD", "pairs", "a", 0, "b", 0)
                    p.execute_command("SPOP", "pairs", 2)
                    v = p.execute()
                    self.assertEqual((len(v[0]), len(v[2])), (10, 2))
            except Exception as e:   # noqa
                errors.append(e)

        def consumer(c):
            try:
                for _ in range(2000):
                    v = c.execute_command("QRESERVE", "rq", 10, 60000)
                    if not v:
                        if len(taken) == 2 * 200 * 10:
                            break
                        time.sleep(0.002)
                        continue
                    self.assertEqual(c.execute_command("MULTI"), b"OK")
                    c.execute_command("QACK", "rq", *[m[0] for m in v])
                    c.execute_command("QSTAT", "pairs")
                    acked, stat = c.execute_command("EXEC")
                    self.assertEqual(acked, len(v))
                    pairs = stat[stat.index(b"messages") + 1]
                    if pairs % 2:
                        odd.append(pairs)
                    taken.extend(m[1] for m in v)
            except Exception as e:   # noqa
                errors.append(e)

        threads = [threading.Thread(target=producer, args=(c, w))
                   for w, c in enumerate(clients[:2])]
        threads += [threading.Thread(target=consumer, args=(c,))
                    for c in clients[2:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(odd, [])
        self.assertEqual(len(taken), 2 * 200 * 10)
        self.assertEqual(len(set(taken)), len(taken))
        self.assertEqual(self.x("SCARD", "rq"), 0)
        self.assertEqual(self.x("SCARD", "pairs"), 0)


    def test_client_list_shows_the_transaction(self):
        s = self.srv.connect()
        info = resp_parse_all(self.srv.raw(resp_cmd("INFO", "server"),
                                           sock=s))[0].decode()
        pid = int(re.search(r"worker_pid:(\d+)", info).group(1))
        self.srv.raw(resp_cmd("CLIENT", "SETNAME", "tx") + resp_cmd("MULTI") +
                     resp_cmd("SADD", "m", "x", 0) + resp_cmd("SCARD", "m"),
                     sock=s)
        # CLIENT LIST shows one worker's clients: ask s's own worker (s
        # itself would only queue the command)
        mine = [c for c in client_on_worker(self.srv, pid).client_list()
                if c["name"] == "tx"]
        self.assertEqual(len(mine), 1)
        c = mine[0]
        self.assertEqual((c["flags"], c["multi"], c["cmd"]), ("x", "2",
                                                              "scard"))
        self.assertGreater(int(c["multi-mem"]), 0)
        self.srv.raw(resp_cmd("EXEC"), sock=s)
        s.close()
        p = self.r.client_info()
        self.assertEqual((p["flags"], int(p["multi"])), ("N", -1))

    def test_exec_reads_one_state(self):
        """An EXEC that only reads sees every other EXEC whole or not at
        all: its reads keep their locks (counter reads and walks let go
        page by page outside EXEC; 257 of 10,300 such EXECs saw one queue
        of a pair written by another worker's EXEC and not the other)."""
        clients = spread(self.srv, 6)
        stop = threading.Event()
        errors, torn, seen = [], [], []

        def writer(c):
            try:
                for _ in range(1500):
                    p = c.pipeline()
                    p.execute_command("SADD", "iso:a", "x", 3600000)
                    p.execute_command("SADD", "iso:b", "x", 3600000)
                    p.execute()
            except Exception as e:   # noqa
                errors.append(e)

        def observer(c):
            try:
                while not stop.is_set():
                    p = c.pipeline()
                    p.execute_command("SCARD", "iso:a")
                    p.execute_command("QSTAT", "iso:b")
                    a, st = p.execute()
                    b = st[st.index(b"messages") + 1]
                    seen.append(a)
                    if a != b:
                        torn.append((a, b))
            except Exception as e:   # noqa
                errors.append(e)

        ws = [threading.Thread(target=writer, args=(c,)) for c in clients[:4]]
        obs = [threading.Thread(target=observer, args=(c,))
               for c in clients[4:]]
        for t in ws + obs:
            t.start()
        for t in ws:
            t.join(120)
        stop.set()
        for t in obs:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertGreater(len(set(seen)), 10, "observers saw no writes")
        self.assertEqual(torn[:10], [])
        self.assertEqual(self.x("SCARD", "iso:a"), 4 * 1500)


def client_on_worker(srv, pid, tries=100):
    """A redis-py client served by the worker with this pid."""
    for _ in range(tries):
        c = srv.client()
        if dqtest.worker_of(c) == pid:
            return c
        dqtest.close_client(c)
    raise AssertionError("no connection reached worker %d" % pid)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def spread(srv, n):
    """n redis-py clients, alternating between the workers where possible
    (INFO server's worker_pid tells which worker serves one)."""
    byworker = {}
    for _ in range(100):
        c = srv.client()
        byworker.setdefault(c.info("server").get("worker_pid"), []).append(c)
        if len(byworker) > 1 and min(map(len, byworker.values())) >= n:
            break
    lists = list(byworker.values())
    if len(lists) > 1 and min(map(len, lists)) * len(lists) < n:
        raise AssertionError("connections not spread over the workers: %r"
                             % {k: len(v) for k, v in byworker.items()})
    out = []
    for i in range(n):
        out.append(lists[i % len(lists)][i // len(lists)])
    return out


if __name__ == "__main__":
    dqtest.main()
