#!/usr/bin/env python3
"""Connection and server commands (SPEC 4.3): what client handshakes and
tools such as redis-cli and redis-py rely on."""

import os
import re
import sys
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402
from dqtest import resp_cmd, resp_parse  # noqa: E402


def info_dict(text):
    """INFO text -> {field: value} (values as strings)."""
    d = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            d[k] = v
    return d


def sections(text):
    return [l[2:].strip().lower() for l in text.splitlines()
            if l.startswith("# ")]


class ServerCmds(dqtest.TestCase):
    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        self.srv = self.server()
        self.r = self.srv.client()

    def cmd(self, *args):
        """One command over a fresh raw connection -> parsed reply."""
        raw = self.srv.raw(resp_cmd(*args))
        v, end = resp_parse(raw)
        self.assertEqual(end, len(raw), "extra bytes after reply: %r" % raw)
        return v

    def test_ping_echo(self):
        self.assertEqual(self.srv.raw(resp_cmd("PING")), b"+PONG\r\n")
        self.assertEqual(self.srv.raw(resp_cmd("PING", "hello")),
                         b"$5\r\nhello\r\n")
        self.assertEqual(self.srv.raw(resp_cmd("PING", b"a\x00\r\nb")),
                         b"$5\r\na\x00\r\nb\r\n")
        self.assertEqual(self.srv.raw(resp_cmd("ECHO", "hi there")),
                         b"$8\r\nhi there\r\n")
        self.assertEqual(self.srv.raw(resp_cmd("ECHO", "")), b"$0\r\n\r\n")
        self.assertErrRaw(self.srv, "-ERR wrong number of arguments for "
                          "'echo' command", "ECHO")
        self.assertErrRaw(self.srv, "-ERR wrong number of arguments for "
                          "'ping' command", "PING", "a", "b")
        self.assertTrue(self.r.ping())
        self.assertEqual(self.r.echo("x"), b"x")

    def test_quit_closes(self):
        s = self.srv.connect()
        s.sendall(resp_cmd("QUIT") + resp_cmd("PING"))
        data = dqtest.read_raw(s, timeout=3, expect=100)
        self.assertEqual(data, b"+OK\r\n", "QUIT must answer +OK and close "
                         "(no reply to the PING after it)")
        self.assertTrue(dqtest.is_closed(s), "connection not closed")
        s.close()
        s = self.srv.connect()
        s.sendall(b"quit\r\n")
        self.assertEqual(dqtest.read_raw(s, timeout=3, expect=100), b"+OK\r\n")
        s.close()
        self.assertTrue(self.r.ping())

    def test_select(self):
        self.assertEqual(self.srv.raw(resp_cmd("SELECT", "0")), b"+OK\r\n")
        self.assertErrRaw(self.srv, "-ERR", "SELECT", "1")
        self.assertErrRaw(self.srv, "-ERR", "SELECT", "abc")
        self.assertErrRaw(self.srv, "-ERR wrong number of arguments",
                          "SELECT")
        # a connection stays usable after the error
        s = self.srv.connect()
        s.sendall(resp_cmd("SELECT", "1") + resp_cmd("PING"))
        data = dqtest.read_raw(s, timeout=3)
        self.assertTrue(data.startswith(b"-ERR") and data.endswith(
            b"\r\n+PONG\r\n"), data)
        s.close()
        r = self.srv.client(db=0)
        self.assertTrue(r.ping())

    def test_hello(self):
        for args in (("HELLO",), ("HELLO", "2")):
            with self.subTest(args=args):
                v = self.cmd(*args)
                self.assertIsInstance(v, list)
                self.assertEqual(len(v) % 2, 0)
                m = dict(zip(v[0::2], v[1::2]))
                for k in (b"server", b"version", b"proto", b"id", b"mode",
                          b"role", b"modules"):
                    self.assertIn(k, m)
                self.assertEqual(m[b"proto"], 2)
                self.assertEqual(m[b"role"], b"master")
                self.assertIsInstance(m[b"id"], int)
        err = self.assertErrRaw(self.srv, "-NOPROTO", "HELLO", "3")
        print("\n  HELLO 3 -> %r" % err)
        self.assertErrRaw(self.srv, "-NOPROTO", "HELLO", "4")
        self.assertErrRaw(self.srv, "-", "HELLO", "abc")
        # HELLO 2 SETNAME sets the name, as in Redis
        s = self.srv.connect()
        s.sendall(resp_cmd("HELLO", "2", "SETNAME", "myname") +
                  resp_cmd("CLIENT", "GETNAME"))
        data = dqtest.read_raw(s, timeout=3)
        replies = dqtest.resp_parse_all(data)
        self.assertEqual(len(replies), 2, data)
        self.assertEqual(replies[1], b"myname")
        s.close()

    def test_hello_refused_leaves_the_connection_as_it_was(self):
        # As Redis: SETNAME is checked before AUTH, so a HELLO that fails
        # on its SETNAME has not authenticated the connection either.
        srv = self.server(requirepass="pw")
        s = srv.connect()
        data = srv.raw(resp_cmd("HELLO", "2", "AUTH", "default", "pw",
                                "SETNAME", "bad name") +
                       resp_cmd("PING") + resp_cmd("CLIENT", "GETNAME"),
                       sock=s)
        v = dqtest.resp_parse_all(data)
        s.close()
        self.assertEqual(len(v), 3, data)
        self.assertTrue(v[0].startswith("ERR Client names cannot contain"),
                        v[0])
        self.assertTrue(v[1].startswith("NOAUTH"), v[1])
        self.assertTrue(v[2].startswith("NOAUTH"), v[2])

    def test_client(self):
        s = self.srv.connect()
        s.sendall(resp_cmd("CLIENT", "ID") + resp_cmd("CLIENT", "GETNAME") +
                  resp_cmd("CLIENT", "SETNAME", "worker-7") +
                  resp_cmd("CLIENT", "GETNAME") +
                  resp_cmd("CLIENT", "SETINFO", "lib-name", "dqtest") +
                  resp_cmd("CLIENT", "SETINFO", "lib-ver", "1.2.3") +
                  resp_cmd("client", "list") +
                  resp_cmd("CLIENT", "SETNAME", "has space") +
                  resp_cmd("CLIENT", "NOSUCH") +
                  resp_cmd("CLIENT", "SETINFO", "bogus-attr", "x") +
                  resp_cmd("PING"))
        data = dqtest.read_raw(s, timeout=3)
        v = dqtest.resp_parse_all(data)
        self.assertEqual(len(v), 11, data)
        cid = v[0]
        self.assertIsInstance(cid, int)
        self.assertIsNone(v[1])
        self.assertEqual(v[2], "OK")
        self.assertEqual(v[3], b"worker-7")
        self.assertEqual(v[4], "OK")
        self.assertEqual(v[5], "OK")
        lst = v[6].decode()
        mine = [l for l in lst.splitlines() if "id=%d " % cid in l + " "]
        self.assertEqual(len(mine), 1, lst)
        self.assertIn("name=worker-7", mine[0])
        self.assertIn("lib-name=dqtest", mine[0])
        self.assertIn("lib-ver=1.2.3", mine[0])
        self.assertIn("addr=127.0.0.1:", mine[0])
        self.assertIsInstance(v[7], dqtest.RespError)
        self.assertIsInstance(v[8], dqtest.RespError)
        self.assertIsInstance(v[9], dqtest.RespError)
        self.assertEqual(v[10], "PONG")
        s.close()
        # ids differ between connections
        ids = {self.cmd("CLIENT", "ID") for _ in range(5)}
        self.assertEqual(len(ids), 5)
        # redis-py's own helpers
        r = self.srv.client(client_name="pyname")
        self.assertEqual(r.client_getname(), "pyname")
        self.assertIsInstance(r.client_id(), int)
        self.assertTrue(any(c.get("name") == "pyname" for c in r.client_list()))

    def test_client_list_filters_and_on_off(self):
        """As Redis 7.2: CLIENT LIST [TYPE t] [ID id ...], other arguments
        a syntax error; NO-EVICT and NO-TOUCH take exactly ON or OFF."""
        r = self.srv.client()
        cid = r.client_id()
        x = r.execute_command
        mine = x("CLIENT", "LIST", "ID", "1", str(cid)).decode()
        self.assertEqual(mine.count("\n"), 1, mine)
        self.assertTrue(mine.startswith("id=%d " % cid), mine)
        self.assertEqual(x("CLIENT", "LIST", "ID", "1"), b"")
        self.assertIn("id=%d " % cid,
                      x("CLIENT", "LIST", "TYPE", "normal").decode())
        self.assertEqual(x("CLIENT", "LIST", "type", "PUBSUB"), b"")
        self.assertEqual(x("CLIENT", "LIST", "TYPE", "replica"), b"")
        self.assertEqual(self.r.client_list(_type="normal")[0]["resp"], "2")
        for args, err in ((("garbage",), "syntax error"),
                          (("ID",), "syntax error"),
                          (("TYPE", "normal", "x"), "syntax error"),
                          (("TYPE", "bogus"), "Unknown client type 'bogus'"),
                          (("ID", "1", "x"), "Invalid client ID")):
            with self.subTest(args=args):
                self.assertRaisesMsg(err, x, "CLIENT", "LIST", *args)
        for sub in ("NO-EVICT", "no-touch"):
            with self.subTest(sub=sub):
                self.assertEqual(x("CLIENT", sub, "on"), b"OK")
                self.assertEqual(x("CLIENT", sub, "OFF"), b"OK")
                self.assertRaisesMsg("syntax error", x, "CLIENT", sub,
                                     "maybe")
                for args in ((), ("on", "x")):
                    self.assertRaisesMsg(
                        "wrong number of arguments for 'client|%s' "
                        "command" % sub.lower(), x, "CLIENT", sub, *args)
        self.assertTrue(r.ping())

    # Redis 7.2's CLIENT LIST fields, in its order
    CLIENT_FIELDS = ["id", "addr", "laddr", "fd", "name", "age", "idle",
                     "flags", "db", "sub", "psub", "ssub", "multi", "qbuf",
                     "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp",
                     "obl", "oll", "omem", "tot-mem", "events", "cmd",
                     "user", "redir", "resp", "lib-name", "lib-ver"]

    def test_client_info_fields(self):
        """Clients index the fields of CLIENT INFO/LIST without a check:
        redis-py 4.3's client_info() raised KeyError on a missing one."""
        r = self.srv.client(client_name="fields")
        for line in (r.execute_command("CLIENT", "INFO").decode(),
                     r.execute_command("CLIENT", "LIST").decode()):
            self.assertTrue(line.endswith("\n"), line)
            keys = [f.split("=", 1)[0] for f in line.split()]
            self.assertEqual(keys, self.CLIENT_FIELDS, line)
        info = r.client_info()
        self.assertEqual(info["name"], "fields")
        self.assertEqual(info["cmd"], "client|info")   # as Redis 7
        for k in ("qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp"):
            self.assertGreaterEqual(int(info[k]), 0, k)
        self.assertGreater(int(info["rbs"]), 0)
        self.assertEqual(int(info["multi"]), -1)
        self.assertEqual(info["resp"], "2")
        mine = [c for c in r.client_list() if c["name"] == "fields"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["id"], str(info["id"]))
        self.assertIn("argv-mem", mine[0])
        self.assertEqual(info["laddr"], "127.0.0.1:%d" % self.srv.port)
        self.assertTrue(info["addr"].startswith("127.0.0.1:"), info)

    def test_client_info_inside_exec(self):
        """As Redis 7: inside EXEC the client is still in its transaction
        (flags=x, multi = the commands EXEC runs, cmd=exec); others see
        the last command by its subcommand name."""
        r = self.srv.client()
        p = r.pipeline()
        p.execute_command("PING")
        p.execute_command("CLIENT", "INFO")
        line = p.execute()[1].decode()
        f = dict(kv.split("=", 1) for kv in line.split())
        self.assertEqual((f["flags"], f["multi"], f["cmd"]),
                         ("x", "2", "exec"), line)
        # CLIENT LIST shows the clients of the caller's worker
        w = dqtest.worker_of(r)
        for _ in range(100):
            other = self.srv.client()
            if dqtest.worker_of(other) == w:
                break
        self.assertEqual(dqtest.worker_of(other), w)
        me = r.client_id()
        mine = [c for c in other.client_list() if c["id"] == str(me)]
        self.assertEqual(mine[0]["cmd"], "client|id")
        self.assertEqual(mine[0]["multi"], "-1")
        self.assertEqual(mine[0]["flags"], "N")
        r.execute_command("CONFIG", "GET", "port")
        mine = [c for c in other.client_list() if c["id"] == str(me)]
        self.assertEqual(mine[0]["cmd"], "config|get")

    def test_laddr_is_the_address_reached(self):
        """With bind 0.0.0.0, laddr is the address the client connected
        to (it said 0.0.0.0), as Redis' is."""
        srv = self.server(bind="0.0.0.0", requirepass="pw")
        r = srv.client()
        self.assertEqual(r.client_info()["laddr"],
                         "127.0.0.1:%d" % srv.port)
        self.assertTrue(all(c["laddr"] == "127.0.0.1:%d" % srv.port
                            for c in r.client_list()))

    def test_command(self):
        v = self.cmd("COMMAND")
        self.assertIsInstance(v, list)
        names = {e[0].lower() for e in v}
        for n in (b"sadd", b"spop", b"scard", b"del", b"keys", b"ping",
                  b"info", b"hello", b"auth", b"command", b"scan"):
            self.assertIn(n, names)
        n = self.cmd("COMMAND", "COUNT")
        self.assertEqual(n, len(v))
        info = self.cmd("COMMAND", "INFO", "sadd")
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0][0], b"sadd")
        self.assertEqual(info[0][1], -4)   # arity: SADD q body delay ...
        self.assertEqual(info[0][3:6], [1, 1, 1])  # first/last key, step
        # ACL categories from the flags, as Redis 7 gives them
        self.assertEqual(info[0][6], ["@write", "@fast", "@queue"])
        self.assertEqual(self.cmd("COMMAND", "INFO", "ping")[0][6],
                         ["@fast", "@connection"])
        self.assertEqual(self.cmd("COMMAND", "INFO", "bspop")[0][6],
                         ["@write", "@slow", "@blocking", "@queue"])
        blocking = self.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT",
                            "blocking")
        self.assertEqual(sorted(blocking), [b"bspop", b"qreserve"])
        # any case; the '@' is not part of the name; unknown: nothing
        self.assertEqual(sorted(self.cmd("COMMAND", "LIST", "FILTERBY",
                                         "ACLCAT", "BLOCKING")), sorted(blocking))
        for cat in ("@blocking", "nosuch", ""):
            self.assertEqual(self.cmd("COMMAND", "LIST", "FILTERBY",
                                      "ACLCAT", cat), [], cat)
        # CONFIG GET of a name that is no key: nothing, asked as it is
        self.assertEqual(self.cmd("CONFIG", "GET", "NOSUCH"), [])
        info = self.cmd("COMMAND", "INFO", "SPOP", "nosuchcmd")
        self.assertEqual(len(info), 2)
        self.assertEqual(info[0][0], b"spop")
        self.assertIsNone(info[1])
        docs = self.cmd("COMMAND", "DOCS", "sadd")
        self.assertEqual(docs[0], b"sadd")
        d = dict(zip(docs[1][0::2], docs[1][1::2]))
        self.assertIn(b"summary", d)
        alldocs = self.cmd("COMMAND", "DOCS")
        self.assertEqual(len(alldocs), 2 * len(v))
        # redis-cli fetches COMMAND DOCS for hints; redis-py's helper
        self.assertEqual(self.r.command_count(), len(v))

    def test_command_subcommands_as_redis(self):
        # An unknown command in COMMAND INFO is Redis' null ($-1), not a
        # null array.
        self.assertTrue(self.srv.raw(resp_cmd("COMMAND", "INFO", "nosuch",
                                              "ping")).startswith(
            b"*2\r\n$-1\r\n*10\r\n$4\r\nping\r\n"))
        for args, err in ((("COUNT", "x"), "-ERR wrong number of arguments "
                           "for 'command|count' command"),
                          (("help", "x"), "-ERR wrong number of arguments "
                           "for 'command|help' command"),
                          (("NOSUCH",), "-ERR unknown subcommand 'NOSUCH'. "
                           "Try COMMAND HELP."),

                          (("LIST", "x"), "-ERR syntax error"),
                          (("LIST", "FILTERBY", "NAME", "x"),
                           "-ERR syntax error")):
            with self.subTest(args=args):
                self.assertEqual(self.assertErrRaw(self.srv, err, "COMMAND",
                                                   *args), err + "\r\n")
        self.assertEqual(self.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN",
                                  "q[a-d]*"),
                         [b"qadd", b"qack", b"qcancel"])
        self.assertEqual(self.cmd("COMMAND", "LIST", "filterby", "aclcat",
                                  "TRANSACTION"),
                         [b"multi", b"exec", b"discard"])
        self.assertEqual(self.cmd("COMMAND", "LIST", "FILTERBY", "MODULE",
                                  "x"), [])
        self.assertEqual(len(self.cmd("COMMAND", "LIST")),
                         self.cmd("COMMAND", "COUNT"))

    def test_help(self):
        """CLIENT, COMMAND and CONFIG HELP answer as in Redis: an array of
        status lines, a title first and HELP last."""
        subs = {"CLIENT": ["GETNAME", "ID", "INFO", "LIST", "NO-EVICT",
                           "NO-TOUCH", "SETINFO", "SETNAME"],
                "COMMAND": ["COUNT", "LIST", "INFO", "DOCS"],
                "CONFIG": ["GET", "SET"]}
        for cmd, words in subs.items():
            with self.subTest(cmd=cmd):
                v = self.cmd(cmd, "help")
                self.assertIsInstance(v, list)
                self.assertTrue(all(type(l) is str for l in v), v)
                self.assertEqual(v[0], "%s <subcommand> [<arg> [value] "
                                 "[opt] ...]. Subcommands are:" % cmd)
                self.assertEqual(v[-2:], ["HELP", "    Print this help."])
                heads = [l.split()[0] for l in v[1:] if l[0] != " "]
                for w in words:
                    self.assertIn(w, heads, v)
                self.assertErrRaw(self.srv, "-ERR", cmd, "HELP", "extra")
        # redis-cli shows it
        self.assertIn("SETNAME <name>", self.srv.cli("client", "help"))

    # Redis 7's argument types; redis-cli 7.0 dereferences a missing type
    ARG_TYPES = {"key", "string", "integer", "double", "pattern",
                 "unix-time", "pure-token", "block", "oneof"}

    def check_arg(self, a):
        """One COMMAND DOCS argument map; its least number of words."""
        self.assertEqual(len(a) % 2, 0, a)
        m = dict(zip(a[0::2], a[1::2]))
        self.assertLessEqual(set(m), {b"name", b"type", b"token", b"flags",
                                      b"arguments"}, a)
        self.assertIsInstance(m[b"name"], bytes)
        t = m[b"type"].decode()
        self.assertIn(t, self.ARG_TYPES, a)
        flags = m.get(b"flags", [])
        # redis-cli asserts that flags are statuses, not bulk strings
        self.assertTrue(all(type(f) is str for f in flags), a)
        self.assertLessEqual(set(flags), {"optional", "multiple"}, a)
        if t == "pure-token":
            self.assertIn(b"token", m, a)
        self.assertEqual(t in ("block", "oneof"), b"arguments" in m, a)
        if t == "block":
            least = sum(self.check_arg(x) for x in m[b"arguments"])
        elif t == "oneof":
            least = min(self.check_arg(x) for x in m[b"arguments"])
        else:
            least = 0 if t == "pure-token" else 1
        least += b"token" in m
        return 0 if "optional" in flags else least

    @staticmethod
    def synopsis(a):
        """An argument as redis-cli 7.0's cliAddArgument writes it."""
        m = dict(zip(a[0::2], a[1::2]))
        t, flags = m[b"type"].decode(), m.get(b"flags", [])
        tok = m[b"token"].decode() if b"token" in m else ""
        if t == "block":
            rep = " ".join(ServerCmds.synopsis(x) for x in m[b"arguments"])
        elif t == "oneof":
            rep = "|".join(ServerCmds.synopsis(x) for x in m[b"arguments"])
        elif t == "pure-token":
            rep = ""
        else:
            rep = m[b"name"].decode()
        if tok and t != "pure-token":
            tok += " "
        s = tok + rep
        if "multiple" in flags:
            s += " [%s ...]" % rep
        return "[%s]" % s if "optional" in flags else s

    def test_command_docs_arguments(self):
        """COMMAND DOCS describes every command's arguments in Redis 7's
        form, for redis-cli's hints and help; the least number of words
        they take agrees with the arity."""
        docs = self.cmd("COMMAND", "DOCS")
        info = {e[0]: e[1] for e in self.cmd("COMMAND")}
        synopses = {}
        for name, d in zip(docs[0::2], docs[1::2]):
            with self.subTest(cmd=name):
                m = dict(zip(d[0::2], d[1::2]))
                args = m.get(b"arguments")
                if args is None:    # takes none: no entry, as in Redis
                    self.assertIn(info[name], (1, -1))
                    args = []
                self.assertIsInstance(args, list)
                least = sum(self.check_arg(a) for a in args)
                self.assertEqual(least + 1, abs(info[name]))
                synopses[name] = " ".join(self.synopsis(a) for a in args)
        self.assertEqual(len(synopses), len(info))
        expect = {
            b"sadd": "queue body delay_ms [body delay_ms ...]",
            b"spop": "queue [count]",
            b"qputat": "queue id body due_unix_ms",
            b"qreserve": "queue count lease_ms [BLOCK timeout_ms]",
            b"qack": "queue id [id ...]",
            b"bspop": "queue [queue ...] timeout",
            b"scan": "cursor [MATCH pattern] [COUNT count] [TYPE type]",
            b"auth": "[username] password",
            b"hello": "[protover [AUTH username password] "
                      "[SETNAME clientname]]",
            b"config": "GET parameter [parameter ...]|HELP",
            b"dbsize": "",
            b"quit": "",
        }
        for name, text in expect.items():
            self.assertEqual(synopses[name], text)
        # redis-cli's own help, built from the same reply
        out = re.sub(r"\x1b\[[0-9;]*m", "", self.srv.cli("help", "sadd"))
        self.assertIn("SADD queue body delay_ms [body delay_ms ...]", out)
        self.assertIn("summary: Enqueue messages", out)
        out = re.sub(r"\x1b\[[0-9;]*m", "", self.srv.cli("help", "qreserve"))
        self.assertIn("QRESERVE queue count lease_ms [BLOCK timeout_ms]", out)

    def test_config(self):
        v = self.cmd("CONFIG", "GET", "port")
        self.assertEqual(v, [b"port", str(self.srv.port).encode()])
        v = self.cmd("config", "get", "PORT")     # echoed as asked
        self.assertEqual(v, [b"PORT", str(self.srv.port).encode()])
        v = self.cmd("CONFIG", "GET", "nosuchparam")
        self.assertEqual(v, [])
        v = self.cmd("CONFIG", "GET", "*")
        m = dict(zip(v[0::2], v[1::2]))
        self.assertEqual(len(v) % 2, 0)
        self.assertIn(b"databases", m)
        self.assertEqual(m[b"databases"], b"1")
        for k in ("maxclients", "timeout", "bind", "databases"):
            v = self.cmd("CONFIG", "GET", k)
            self.assertEqual(len(v), 2, (k, v))
            self.assertEqual(v[0], k.encode())
        self.assertErrRaw(self.srv, "-ERR", "CONFIG", "SET", "port", "1")
        self.assertErrRaw(self.srv, "-ERR", "CONFIG", "NOSUCH")
        self.assertEqual(self.r.config_get("port"),
                         {"port": str(self.srv.port)})

    def test_config_get_several_parameters(self):
        """Redis 7: CONFIG GET takes several parameters at once."""
        v = self.cmd("CONFIG", "GET", "maxclients", "timeout")
        m = dict(zip(v[0::2], v[1::2]))
        self.assertEqual(set(m), {b"maxclients", b"timeout"}, v)
        # as Redis 7: a name is echoed as asked, a pattern's matches as
        # they are spelled
        v = self.cmd("CONFIG", "GET", "MAXCLIENTS", "MAXCLIENT*")
        self.assertEqual(v[0::2], [b"MAXCLIENTS"], v)
        v = self.cmd("CONFIG", "GET", "MaxClient?")
        self.assertEqual(v[0::2], [b"maxclients"], v)

    def test_config_get_star_lists_everything(self):
        """A Redis user expects CONFIG GET * to list every parameter
        (dqd.conf(5)/dqd(8) say it gives bind but not port)."""
        v = self.cmd("CONFIG", "GET", "*")
        m = dict(zip(v[0::2], v[1::2]))
        for k in (b"port", b"bind", b"maxclients", b"timeout", b"databases",
                  b"save", b"appendonly"):
            self.assertIn(k, m, "CONFIG GET * lacks %r: %r" % (k, v))
        self.assertEqual(m[b"port"], str(self.srv.port).encode())
        v = self.cmd("CONFIG", "GET", "*port*")
        self.assertIn(b"port", v[0::2])

    def test_info(self):
        r = self.r
        r.execute_command("SADD", "q1", "a", 0, "b", 100000)
        r.execute_command("SADD", "q2", "a", 0)
        full = self.cmd("INFO").decode()
        self.assertIn("\r\n", full)   # Redis' line ends
        secs = sections(full)
        for s in ("server", "clients", "memory", "persistence", "stats",
                  "replication", "cluster", "keyspace"):
            self.assertIn(s, secs, "INFO lacks section %s" % s)
        expected = {
            "server": ["redis_version", "tcp_port", "uptime_in_seconds",
                       "process_id"],
            "clients": ["connected_clients", "maxclients", "blocked_clients"],
            "memory": ["used_memory"],
            "cluster": ["cluster_enabled"],
            "persistence": ["loading"],
            "stats": ["total_connections_received", "total_commands_processed",
                      "commits", "log_syncs", "log_syncs_by_workers",
                      "cache_hit_ratio",
                      "cache_hits", "cache_misses", "wheel_moves"],
            "replication": ["role"],
        }
        for sec, fields in expected.items():
            with self.subTest(section=sec):
                text = self.cmd("INFO", sec).decode()
                self.assertEqual(sections(text), [sec], text)
                d = info_dict(text)
                for f in fields:
                    self.assertIn(f, d, "INFO %s lacks %s" % (sec, f))
                if sec == "persistence":
                    self.assertEqual(d["loading"], "0")
                if sec == "replication":
                    self.assertEqual(d["role"], "master")
                if sec == "server":
                    self.assertEqual(d["tcp_port"], str(self.srv.port))
                if sec == "clients":
                    self.assertGreaterEqual(int(d["connected_clients"]), 1)
                if sec == "stats":
                    # the SADDs above read pages: counted, as whole numbers
                    self.assertGreater(int(d["cache_hits"]) +
                                       int(d["cache_misses"]), 0)
                    self.assertEqual(int(d["log_syncs"]), 0)   # "write"
        text = self.cmd("INFO", "KEYSPACE").decode()
        self.assertEqual(sections(text), ["keyspace"])
        d = info_dict(text)
        self.assertIn("db0", d, "keyspace lacks db0 with 2 queues: %r" % text)
        self.assertTrue(d["db0"].startswith("keys=2"), d["db0"])
        # redis-py's parser copes with the whole thing
        pi = r.info()
        self.assertEqual(pi["loading"], 0)
        self.assertEqual(pi["role"], "master")
        self.assertEqual(pi["db0"]["keys"], 2)
        self.assertIn("redis_version", r.info("server"))
        # several sections at once / all / everything / default
        for args in (("all",), ("everything",), ("default",)):
            text = self.cmd("INFO", *args).decode()
            self.assertIn("server", sections(text), args)
        text = self.cmd("INFO", "server", "clients").decode()
        self.assertEqual(sections(text), ["server", "clients"])
        # commandstats, as Redis: with all/everything or by name only
        self.assertNotIn("commandstats", sections(full))
        self.assertNotIn("commandstats",
                         sections(self.cmd("INFO", "default").decode()))
        for args in (("all",), ("everything",), ("CommandStats",)):
            self.assertIn("commandstats",
                          sections(self.cmd("INFO", *args).decode()), args)

    def test_info_bad_sections(self):
        """An unknown section gives nothing, as in Redis, and does not
        hide the known ones beside it."""
        self.assertEqual(self.cmd("INFO", "nosuch"), b"")
        self.assertEqual(sections(self.cmd("INFO", "nosuch",
                                           "commandstats").decode()),
                         ["commandstats"])
        self.assertEqual(sections(self.cmd("INFO", "x" * 5000, "cluster")
                                  .decode()), ["cluster"])

    def test_subcommand_errors(self):
        """Redis 7's wordings for an unknown subcommand and for one with
        the wrong number of arguments, the same for every command."""
        for cmd in ("CLIENT", "CONFIG", "COMMAND"):
            with self.subTest(cmd=cmd):
                self.assertErrRaw(self.srv, "-ERR unknown subcommand 'Nope'. "
                                  "Try %s HELP." % cmd, cmd, "Nope")
                self.assertErrRaw(self.srv, "-ERR wrong number of arguments "
                                  "for '%s|help' command" % cmd.lower(),
                                  cmd, "HELP", "extra")
        # at most 128 bytes of the name are echoed, as Redis' %.128s
        for cmd in ("CLIENT", "CONFIG", "COMMAND"):
            self.assertErrRaw(self.srv, "-ERR unknown subcommand '%s'. Try "
                              "%s HELP.\r" % ("z" * 128, cmd), cmd, "z" * 300)
        self.assertErrRaw(self.srv, "-ERR unknown subcommand '%s'. Try "
                          "CONFIG HELP.\r" % ("z" * 40), "CONFIG", "z" * 40)

    def test_info_commandstats(self):
        """INFO commandstats counts each command once when it runs, over
        all workers, in Redis' format (redis-py parses it)."""
        r = self.r
        before = r.info("commandstats")
        self.assertNotIn("cmdstat_sadd", before)
        for _ in range(3):
            r.execute_command("SADD", "q", "m", 0)
        r.execute_command("SPOP", "q", 2)
        p = r.pipeline()                 # MULTI/EXEC: the SADD counts once
        p.execute_command("SADD", "q", "n", 0)
        p.execute()
        with self.assertRaises(redis.ResponseError):   # refused: not counted
            r.execute_command("SADD", "q")
        other = self.srv.client()
        other.execute_command("SCARD", "q")
        st = r.info("commandstats")
        self.assertEqual(st["cmdstat_sadd"]["calls"], 4)
        self.assertEqual(st["cmdstat_spop"]["calls"], 1)
        self.assertEqual(st["cmdstat_exec"]["calls"], 1)
        self.assertEqual(st["cmdstat_scard"]["calls"], 1)
        for name, v in st.items():
            self.assertTrue(name.startswith("cmdstat_"), name)
            self.assertEqual(set(v), {"calls", "usec", "usec_per_call",
                                      "rejected_calls", "failed_calls"})
            self.assertAlmostEqual(v["usec_per_call"],
                                   v["usec"] / v["calls"], delta=0.01)
        text = self.cmd("INFO", "commandstats").decode()
        self.assertTrue(re.search(r"^cmdstat_sadd:calls=4,usec=\d+,"
                                  r"usec_per_call=\d+\.\d\d,"
                                  r"rejected_calls=0,failed_calls=0\r$",
                                  text, re.M), text)

    def test_info_counts_the_commands_before_it_in_a_pipeline(self):
        """Commands that arrive together run as one batch, whose counters
        are added at its commit: INFO in it did not count the commands
        before it.  Redis counts each command as it runs."""
        data = b"".join(resp_cmd(*c) for c in (
            ("INFO", "stats"), ("PING",), ("PING",), ("SADD", "st", "x", 0),
            ("SPOP", "st"), ("INFO", "stats")))
        raw = self.srv.raw(data)
        infos = re.findall(rb"\$\d+\r\n(# Stats\r\n.*?)\r\n(?=\+|:|\*|\$|$)",
                           raw, re.S)
        self.assertEqual(len(infos), 2, raw)

        def field(text, name):
            return int(re.search(rb"^" + name + rb":(\d+)\r?$", text,
                                 re.M).group(1))
        a, b = infos
        self.assertEqual(field(b, b"total_commands_processed") -
                         field(a, b"total_commands_processed"), 5)
        self.assertEqual(field(b, b"messages_enqueued") -
                         field(a, b"messages_enqueued"), 1)
        self.assertEqual(field(b, b"messages_delivered") -
                         field(a, b"messages_delivered"), 1)

    def test_unknown_command(self):
        raw = self.srv.raw(resp_cmd("NOSUCH", "a", "b"))
        self.assertEqual(raw, b"-ERR unknown command 'NOSUCH', with args "
                              b"beginning with: 'a' 'b' \r\n")
        raw = self.srv.raw(resp_cmd("GET", "x"))
        self.assertEqual(raw, b"-ERR unknown command 'GET', with args "
                              b"beginning with: 'x' \r\n")
        raw = self.srv.raw(resp_cmd("FLUSHALL"))
        self.assertEqual(raw, b"-ERR unknown command 'FLUSHALL', with args "
                              b"beginning with: \r\n")
        # as Redis: up to 128 bytes of the name, and of the arguments
        raw = self.srv.raw(resp_cmd("N" * 200, "a" * 100, "b" * 50, "c"))
        self.assertEqual(raw, b"-ERR unknown command '" + b"N" * 128 +
                         b"', with args beginning with: '" + b"a" * 100 +
                         b"' '" + b"b" * 25 + b"' \r\n")
        # the connection stays open after the error
        s = self.srv.connect()
        s.sendall(resp_cmd("NOSUCH") + resp_cmd("PING"))
        data = dqtest.read_raw(s, timeout=3)
        self.assertTrue(data.startswith(b"-ERR unknown command") and
                        data.endswith(b"+PONG\r\n"), data)
        s.close()

    def test_wrong_arity(self):
        cases = [("SADD", "q"), ("SPOP",), ("SCARD",), ("SCARD", "a", "b"),
                 ("DEL",), ("KEYS", "a", "b"), ("EXISTS",), ("TYPE",),
                 ("ECHO",), ("SELECT",), ("DBSIZE", "x"), ("SCAN",)]
        for args in cases:
            with self.subTest(args=args):
                self.assertErrRaw(
                    self.srv, "-ERR wrong number of arguments for '%s' command"
                    % args[0].lower(), *args)

    def test_case_insensitive(self):
        s = self.srv.connect()
        cmds = [("sAdD", "Q", "body", "0"), ("SCARD", "Q"), ("scard", "q"),
                ("spop", "Q"), ("Ping",), ("ECHO", "x"), ("info", "SERVER"),
                ("KeYs", "*"), ("dbsize",)]
        s.sendall(b"".join(resp_cmd(*c) for c in cmds))
        v = dqtest.resp_parse_all(dqtest.read_raw(s, timeout=3))
        self.assertEqual(v[:6], [1, 1, 0, b"body", "PONG", b"x"])
        self.assertTrue(v[6].startswith(b"# Server"))
        self.assertEqual(v[7:], [[], 0])
        s.close()

    def test_inline(self):
        srv = self.srv
        self.assertEqual(srv.raw(b"PING\r\n"), b"+PONG\r\n")
        self.assertEqual(srv.raw(b"ping\n"), b"+PONG\r\n")
        self.assertEqual(srv.raw(b"  PING   \r\n"), b"+PONG\r\n")
        s = srv.connect()
        s.sendall(b"SADD q hello 0\r\n")
        self.assertEqual(dqtest.read_raw(s, timeout=3), b":1\r\n")
        s.sendall(b'SADD q "hello world" 0 \'single q\' 0 "esc\\x41\\n\\"" 0\r\n')
        self.assertEqual(dqtest.read_raw(s, timeout=3), b":3\r\n")
        s.sendall(b"SPOP q 10\r\n")
        v = resp_parse(dqtest.read_raw(s, timeout=3))[0]
        self.assertEqual(v, [b"hello", b"hello world", b"single q",
                             b'escA\n"'])
        s.sendall(b'ECHO ""\r\n')
        self.assertEqual(dqtest.read_raw(s, timeout=3), b"$0\r\n\r\n")
        # blank lines are ignored; inline and RESP mix on one connection
        s.sendall(b"\r\n\r\nPING\r\n" + resp_cmd("ECHO", "resp") +
                  b"ECHO inline\r\n")
        self.assertEqual(dqtest.read_raw(s, timeout=3),
                         b"+PONG\r\n$4\r\nresp\r\n$6\r\ninline\r\n")
        # a command split over several writes
        s.sendall(b"EC")
        time.sleep(0.05)
        s.sendall(b"HO spl")
        time.sleep(0.05)
        s.sendall(b"it\r\n")
        self.assertEqual(dqtest.read_raw(s, timeout=3), b"$5\r\nsplit\r\n")
        s.close()

    def test_redis_cli(self):
        srv = self.srv
        out = srv.cli("info", "server")
        self.assertIn("# Server", out)
        self.assertIn("tcp_port:%d" % srv.port, out)
        out = srv.cli("ping")
        self.assertEqual(out, "PONG\n")
        self.assertEqual(srv.cli("sadd", "q", "a", "0", "b", "0", "c",
                                 "100000").strip(), "3")
        out = srv.cli("--no-raw", "spop", "q", "3")
        self.assertEqual(out, '1) "a"\n2) "b"\n')
        out = srv.cli("--no-raw", "spop", "q", "3")
        self.assertEqual(out, "(empty array)\n")
        out = srv.cli("--no-raw", "spop", "q")
        self.assertEqual(out, "(nil)\n")
        out = srv.cli("--no-raw", "scard", "q")
        self.assertEqual(out, "(integer) 1\n")
        out = srv.cli("--no-raw", "get", "x")
        self.assertTrue(out.startswith("(error) ERR unknown command"), out)
        # interactive-style session on stdin (redis-cli reads commands)
        out = srv.cli("--no-raw", input=b"sadd q2 hello 0\nspop q2 5\n"
                      b"dbsize\nkeys *\n")
        self.assertEqual(out, '(integer) 1\n1) "hello"\n(integer) 1\n'
                              '1) "q"\n')
        # redis-cli's own handshake and helpers
        out = srv.cli("--no-raw", "command", "count")
        self.assertTrue(out.startswith("(integer) "), out)
        out = srv.cli("--scan")
        self.assertEqual(out.split(), ["q"])
        out = srv.cli("-r", "3", "ping")
        self.assertEqual(out.split(), ["PONG"] * 3)

    def test_dbsize(self):
        r = self.r
        self.assertEqual(r.dbsize(), 0)
        for i in range(5):
            r.execute_command("SADD", "q%d" % i, "m", 0 if i < 2 else 100000)
        self.assertEqual(r.dbsize(), 5)
        r.spop("q0")
        r.delete("q1")
        self.assertEqual(r.dbsize(), 3)



class Documented(dqtest.ServerCase):
    """What the server offers is in its man pages: every command COMMAND
    LIST names has its entry in dqd(8), every key CONFIG GET shows (but
    the Redis compatibility ones) its entry in dqd.conf(5) and a line in
    the sample etc/dqd.conf."""
    SRC = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    COMPAT_KEYS = {"save", "appendonly", "databases"}

    def read(self, *path):
        with open(os.path.join(self.SRC, *path)) as f:
            return f.read()

    def test_every_command_in_dqd_8(self):
        page = self.read("man", "dqd.8")
        names = self.srv.cli("COMMAND", "LIST").split()
        self.assertIn("debug", names)
        missing = [n for n in names if not re.search(
            r"^\.It Cm %s\b" % n.upper(), page, re.M)]
        self.assertEqual(missing, [])

    def test_every_key_in_dqd_conf_5_and_the_sample(self):
        page = self.read("man", "dqd.conf.5")
        sample = self.read("etc", "dqd.conf")
        keys = [k.decode() for k in self.x("CONFIG", "GET", "*")[::2]]
        self.assertIn("enable_debug_command", keys)
        keys = [k.split(".")[-1] for k in keys if k not in self.COMPAT_KEYS]
        self.assertEqual([k for k in keys if not re.search(
            r"^\.It Ic %s\b" % k, page, re.M)], [])
        self.assertEqual([k for k in keys if not re.search(
            r"^\s*%s = " % k, sample, re.M)], [])

if __name__ == "__main__":
    dqtest.main()
