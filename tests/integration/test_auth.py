#!/usr/bin/env python3
"""requirepass and AUTH, as Redis does them."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402
import redis  # noqa: E402
from dqtest import resp_cmd, resp_parse_all  # noqa: E402

PASS = "s3cret pass\"word"


class Auth(dqtest.TestCase):
    def setUp(self):
        self.srv = self.server(requirepass=PASS)

    def exchange(self, *cmds):
        """Send commands on one raw connection; parsed replies."""
        s = self.srv.connect()
        try:
            data = self.srv.raw(b"".join(resp_cmd(*c) for c in cmds),
                                sock=s)
        finally:
            s.close()
        return resp_parse_all(data)

    def test_noauth_before_auth(self):
        for c in [("PING",), ("SADD", "q", "m", "0"), ("SPOP", "q"),
                  ("KEYS", "*"), ("SCARD", "q"), ("DEL", "q"), ("INFO",),
                  ("DBSIZE",), ("CONFIG", "GET", "*"),
                  ("CLIENT", "LIST")]:
            with self.subTest(cmd=c):
                v = self.exchange(c)
                self.assertEqual(len(v), 1)
                self.assertTrue(v[0].startswith("NOAUTH"), v)
        self.assertEqual(self.srv.raw(resp_cmd("PING")),
                         b"-NOAUTH Authentication required.\r\n")
        # as Redis 7: a refused EXEC says that it ended a transaction
        self.assertEqual(self.srv.raw(resp_cmd("MULTI") + resp_cmd("EXEC")),
                         b"-NOAUTH Authentication required.\r\n"
                         b"-EXECABORT Transaction discarded because of: "
                         b"NOAUTH Authentication required.\r\n")
        # Redis checks the command name before authentication: an unknown
        # command is "unknown command" either way; accept both
        v = self.exchange(("NOSUCHCMD",))
        self.assertTrue(v[0].startswith("NOAUTH") or
                        v[0].startswith("ERR unknown command"), v)
        # nothing was enqueued by the refused SADD
        r = self.srv.client()
        self.assertEqual(r.scard("q"), 0)
        self.assertEqual(r.keys(), [])

    def test_noauth_inline(self):
        self.assertTrue(self.srv.raw(b"SADD q m 0\r\n").startswith(b"-NOAUTH"))

    def test_wrong_password(self):
        v = self.exchange(("AUTH", "wrong"), ("PING",), ("AUTH", "default", "x"),
                          ("PING",))
        self.assertEqual(len(v), 4)
        self.assertTrue(v[0].startswith("WRONGPASS"), v[0])
        self.assertTrue(v[1].startswith("NOAUTH"), v[1])
        self.assertTrue(v[2].startswith("WRONGPASS"), v[2])
        self.assertTrue(v[3].startswith("NOAUTH"), v[3])
        self.assertEqual(self.srv.raw(resp_cmd("AUTH", "bad")),
                         b"-WRONGPASS invalid username-password pair or user "
                         b"is disabled.\r\n")
        # a user other than default is unknown
        v = self.exchange(("AUTH", "alice", PASS), ("PING",))
        self.assertTrue(v[0].startswith("WRONGPASS"), v[0])
        self.assertTrue(v[1].startswith("NOAUTH"), v[1])
        # redis-py 4.3 raises ResponseError (newer: AuthenticationError)
        with self.assertRaises((redis.AuthenticationError,
                                redis.ResponseError)) as cm:
            redis.Redis(port=self.srv.port, password="nope").ping()
        self.assertIn("WRONGPASS", str(cm.exception))

    def test_auth_ok(self):
        v = self.exchange(("AUTH", PASS), ("PING",), ("SADD", "q", "m", "0"),
                          ("SPOP", "q"), ("AUTH", "wrong"), ("PING",))
        self.assertEqual(v[:4], ["OK", "PONG", 1, b"m"])
        # a failed AUTH later: WRONGPASS (connection stays authenticated,
        # as in Redis)
        self.assertTrue(v[4].startswith("WRONGPASS"), v[4])
        self.assertEqual(v[5], "PONG")

    def test_auth_default_user(self):
        v = self.exchange(("AUTH", "default", PASS), ("PING",))
        self.assertEqual(v, ["OK", "PONG"])
        # user names are case-sensitive, as in Redis
        v = self.exchange(("AUTH", "Default", PASS),
                          ("HELLO", "2", "AUTH", "DEFAULT", PASS), ("PING",))
        self.assertTrue(v[0].startswith("WRONGPASS"), v)
        self.assertTrue(v[1].startswith("WRONGPASS"), v)
        self.assertTrue(v[2].startswith("NOAUTH"), v)

    def test_auth_arity(self):
        v = self.exchange(("AUTH",), ("AUTH", "a", "b", "c"))
        self.assertTrue(all(x.startswith("ERR") for x in v), v)

    def test_hello_auth(self):
        v = self.exchange(("HELLO", "2", "AUTH", "default", PASS), ("PING",))
        self.assertEqual(len(v), 2)
        self.assertIsInstance(v[0], list)
        self.assertIn(b"proto", v[0])
        self.assertEqual(v[1], "PONG")
        v = self.exchange(("HELLO", "2", "AUTH", "default", "bad"), ("PING",))
        self.assertTrue(v[0].startswith("WRONGPASS"), v[0])
        self.assertTrue(v[1].startswith("NOAUTH"), v[1])
        # HELLO with no AUTH before authenticating: Redis answers NOAUTH
        v = self.exchange(("HELLO", "2"))
        self.assertTrue(v[0].startswith("NOAUTH"), v)
        v = self.exchange(("HELLO", "3", "AUTH", "default", PASS))
        self.assertTrue(v[0].startswith("NOPROTO"), v)

    def test_redis_py_password(self):
        r = redis.Redis(port=self.srv.port, password=PASS)
        self.assertTrue(r.ping())
        self.assertEqual(r.execute_command("SADD", "q", "x", 0), 1)
        self.assertEqual(r.spop("q"), b"x")
        r.close()
        r = redis.Redis(port=self.srv.port, username="default", password=PASS)
        self.assertTrue(r.ping())
        r.close()
        r = redis.Redis(port=self.srv.port)
        with self.assertRaises(redis.AuthenticationError):
            r.ping()
        r.close()

    def test_redis_cli_a(self):
        cmd = [dqtest.REDIS_CLI, "-p", str(self.srv.port), "-a", PASS,
               "--no-auth-warning"]
        p = subprocess.run(cmd + ["sadd", "q", "hello", "0"],
                           capture_output=True, timeout=10)
        self.assertEqual(p.stdout.strip(), b"1", p)
        p = subprocess.run(cmd + ["spop", "q"], capture_output=True,
                           timeout=10)
        self.assertEqual(p.stdout.strip(), b"hello", p)
        p = subprocess.run(cmd[:-3] + ["--no-auth-warning", "ping"],
                           capture_output=True, timeout=10)
        self.assertIn(b"NOAUTH", p.stdout + p.stderr)
        p = subprocess.run(cmd[:-3] + ["-a", "wrong", "--no-auth-warning",
                                       "ping"], capture_output=True,
                           timeout=10)
        self.assertIn(b"WRONGPASS", p.stdout + p.stderr)


class NoPassword(dqtest.TestCase):
    def setUp(self):
        self.srv = self.server()

    def test_auth_without_password(self):
        """Redis 7: the one-argument AUTH is an error without requirepass;
        the two-argument form names the default user, which then has no
        password (nopass): any password is right, any other user wrong."""
        v = resp_parse_all(self.srv.raw(
            resp_cmd("AUTH", "x") + resp_cmd("AUTH", "default", "x") +
            resp_cmd("AUTH", "default", "") + resp_cmd("AUTH", "alice", "x") +
            resp_cmd("HELLO", "2", "AUTH", "default", "x") +
            resp_cmd("HELLO", "2", "AUTH", "alice", "x") +
            resp_cmd("AUTH", "DEFAULT", "x") +
            resp_cmd("PING")))
        self.assertEqual(len(v), 8)
        self.assertEqual(v[0], "ERR AUTH <password> called without any "
                         "password configured for the default user. Are "
                         "you sure your configuration is correct?")
        self.assertEqual(v[1:3], ["OK", "OK"])
        self.assertEqual(v[3], "WRONGPASS invalid username-password pair or "
                         "user is disabled.")
        self.assertIsInstance(v[4], list)
        self.assertIn(b"proto", v[4])
        self.assertTrue(v[5].startswith("WRONGPASS"), v[5])
        self.assertTrue(v[6].startswith("WRONGPASS"), v[6])
        self.assertEqual(v[7], "PONG")

    def test_clients_with_credentials(self):
        """A client configured with user and password still works."""
        r = redis.Redis(port=self.srv.port, username="default",
                        password="x")
        self.assertTrue(r.ping())
        self.assertEqual(r.execute_command("SADD", "q", "m", 0), 1)
        r.close()
        r = redis.Redis(port=self.srv.port, username="alice", password="x")
        with self.assertRaises((redis.AuthenticationError,
                                redis.ResponseError)) as cm:
            r.ping()
        self.assertIn("WRONGPASS", str(cm.exception))
        r.close()
        p = subprocess.run([dqtest.REDIS_CLI, "-p", str(self.srv.port),
                            "--user", "default", "--pass", "x",
                            "--no-auth-warning", "scard", "q"],
                           capture_output=True, timeout=10)
        self.assertEqual((p.stdout.strip(), p.stderr), (b"1", b""), p)


if __name__ == "__main__":
    dqtest.main()
