"""dqctl(8) used as an operator would: server commands against a real dqd,
data directory commands on its environment, a hot backup taken under load
and started from, and bad input with its exit statuses.

Environment: DQCTL (default /tmp/build/dqctl), DQD (see dqtest).
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata

import redis

import dqtest

DQCTL = os.environ.get("DQCTL") or "/tmp/build/dqctl"

# Exit statuses documented in dqctl(8).
EX_OK, EX_ERR, EX_USAGE, EX_UNREACH, EX_AUTH, EX_INUSE, EX_DAMAGED = range(7)


def dqctl(*args, input=None, timeout=120, env=None, cwd=None):
    """Run dqctl ARGS; return (status, stdout, stderr) as text."""
    e = dict(os.environ)
    e.pop("DQCTL_AUTH", None)
    if env:
        e.update(env)
    p = subprocess.run([DQCTL] + [str(a) for a in args], input=input,
                       capture_output=True, timeout=timeout, env=e, cwd=cwd)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


class Producers(dqtest.Workers):
    """Threads doing SADD of unique bodies; remembers what was acked and
    when, so that a backup can be checked against what came before it."""

    def __init__(self, srv, threads=4, queue="load"):
        self.srv, self.queue = srv, queue
        self.acked = []            # (monotonic time of the reply, body)
        self.errors = []
        super().__init__(threads)

    def run(self, t):
        r = self.srv.client(socket_timeout=10)
        i = 0
        while not self.stopping:
            body = "%d-%d" % (t, i)
            i += 1
            try:
                r.execute_command("SADD", self.queue, body, 3600000)
            except redis.RedisError as e:
                self.errors.append(repr(e))
                return
            with self.lock:
                self.acked.append((time.monotonic(), body))


class DqctlTest(dqtest.TestCase):

    def srv_args(self, srv):
        return ["-h", "127.0.0.1", "-p", srv.port]

    def ok(self, *args, **kw):
        rc, out, err = dqctl(*args, **kw)
        self.assertEqual(rc, EX_OK, "dqctl %r exited %d\nstdout: %s\n"
                         "stderr: %s" % (args, rc, out, err))
        return out

    # -- server commands --------------------------------------------------
    def test_status(self):
        srv = self.server(workers=2)
        srv.client().execute_command("SADD", "a", "x", 0, "y", 60000)
        out = self.ok(*self.srv_args(srv), "status")
        for word in ("uptime", "master pid", "workers", "clients",
                     "commands/s", "messages", "data", "log"):
            self.assertIn(word, out)
        self.assertIn(str(srv.pid), out)
        st = json.loads(self.ok(*self.srv_args(srv), "--json", "status"))
        self.assertEqual(st["master_pid"], srv.pid)
        self.assertEqual(st["workers"], 2)
        self.assertEqual(st["messages"], 2)
        self.assertEqual(st["queues"], 1)
        self.assertEqual(st["role"], "master")
        self.assertGreater(st["log_bytes"], 0)
        self.assertGreater(st["data_bytes"], 0)
        self.assertGreaterEqual(st["uptime_s"], 0)
        if st["worker_pids"] is not None:
            self.assertEqual(sorted(st["worker_pids"]),
                             sorted(p for p in srv.worker_pids()
                                    if p in st["worker_pids"]))
            self.assertEqual(len(st["worker_pids"]), 2)

    def test_status_counts_commands_per_second(self):
        srv = self.server(workers=1)
        r = srv.client()
        stop = threading.Event()

        def load():
            while not stop.is_set():
                r.execute_command("SCARD", "q")

        t = threading.Thread(target=load)
        t.start()
        try:
            st = json.loads(self.ok(*self.srv_args(srv), "-j", "status"))
        finally:
            stop.set()
            t.join()
        self.assertGreater(st["commands_per_s"], 10)

    def test_queues_stat_peek(self):
        srv = self.server()
        r = srv.client()
        r.execute_command("SADD", "orders", "o1", 0, "o2", 0, "o3", 600000)
        r.execute_command("SADD", "mails", "m1", 0)
        out = self.ok(*self.srv_args(srv), "queues")
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:5],
                         ["QUEUE", "MESSAGES", "READY", "DELAYED",
                          "RESERVED"])
        self.assertTrue(lines[1].startswith("mails"))
        self.assertTrue(lines[2].startswith("orders"))
        self.assertEqual(lines[2].split()[1], "3")

        qs = json.loads(self.ok(*self.srv_args(srv), "--json", "queues"))
        by = {q["queue"]: q for q in qs}
        self.assertEqual(set(by), {"orders", "mails"})
        self.assertEqual(by["orders"]["messages"], 3)
        if by["orders"]["ready"] is not None:          # QSTAT known
            self.assertEqual(by["orders"]["ready"], 2)
            self.assertEqual(by["orders"]["delayed"], 1)
            self.assertEqual(by["orders"]["reserved"], 0)

        st = json.loads(self.ok(*self.srv_args(srv), "--json", "stat",
                                "orders"))
        self.assertEqual(st["queue"], "orders")
        self.assertEqual(st["messages"], 3)
        out = self.ok(*self.srv_args(srv), "stat", "orders")
        self.assertIn("messages", out)

        rc, out, err = dqctl(*self.srv_args(srv), "--json", "peek",
                             "orders", 2)
        if rc == EX_ERR and "QPEEK" in err:
            self.skipTest("this dqd has no QPEEK yet")
        self.assertEqual(rc, EX_OK, err)
        msgs = json.loads(out)
        self.assertEqual([m["body"] for m in msgs], ["o1", "o2"])
        for m in msgs:
            self.assertEqual(m["deliveries"], 0)
            self.assertLessEqual(m["due_unix_ms"], time.time() * 1000 + 1)
            self.assertTrue(m["id"])
        out = self.ok(*self.srv_args(srv), "peek", "orders")
        self.assertIn("o3", out)
        self.assertIn("in ", out)            # due in the future
        # Nothing changed.
        self.assertEqual(r.execute_command("SCARD", "orders"), 3)

    def test_utf8_names_under_a_utf8_locale(self):
        """Under a UTF-8 locale a Chinese name is shown as it is, two
        columns a character, and the columns after it still line up;
        under C, and for bytes that are not UTF-8, \\xHH as before."""
        srv = self.server()
        r = srv.client()
        r.execute_command("SADD", "订单:超时", "x", 0)
        r.execute_command("SADD", "orders", "y", 0, "z", 0)
        r.execute_command("SADD", b"bad\xe8q", "m", 0)

        def cols(text):
            return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1
                       for ch in text)

        def messages_end(line):
            # display column where the MESSAGES field ends
            name_end = line.index("  ")
            rest = line[name_end:]
            field = rest.split()[0]
            return cols(line[:name_end + rest.index(field) + len(field)])
        out = self.ok(*self.srv_args(srv), "queues",
                      env={"LC_ALL": "C.UTF-8"})
        lines = out.splitlines()
        self.assertIn("订单:超时", out)
        self.assertIn("bad\\xe8q", out)
        ends = {messages_end(l) for l in lines}
        self.assertEqual(len(ends), 1, "columns do not line up:\n" + out)
        st = self.ok(*self.srv_args(srv), "stat", "订单:超时",
                     env={"LC_ALL": "C.UTF-8"})
        self.assertIn("订单:超时", st)
        out = self.ok(*self.srv_args(srv), "queues", env={"LC_ALL": "C"})
        self.assertNotIn("订单", out)
        self.assertIn("\\xe8\\xae\\xa2\\xe5\\x8d\\x95:", out)

    def test_binary_names_json(self):
        srv = self.server()
        srv.client().execute_command("SADD", b"bin\xff\x00q", b"\x01", 0)
        qs = json.loads(self.ok(*self.srv_args(srv), "--json", "queues"))
        self.assertEqual(len(qs), 1)
        self.assertEqual(qs[0]["queue_base64"], "Ymlu/wBx")
        out = self.ok(*self.srv_args(srv), "queues")
        self.assertIn("bin\\xff\\x00q", out)
        # byte 1 and the four characters \x01 must not look the same
        srv.client().execute_command("SADD", b"a\x01", b"m", 0)
        srv.client().execute_command("SADD", b"a\\x01", b"m", 0)
        out = self.ok(*self.srv_args(srv), "queues")
        names = [l.split()[0] for l in out.splitlines()[1:] if l.strip()]
        self.assertIn("a\\x01", names)
        self.assertIn("a\\\\x01", names)

    def test_delete(self):
        srv = self.server()
        r = srv.client()
        r.execute_command("SADD", "gone", "a", 0, "b", 0)
        r.execute_command("SADD", "kept", "a", 0)
        # No terminal and no -y: refused, nothing deleted.
        rc, out, err = dqctl(*self.srv_args(srv), "delete", "gone",
                             input=b"y\n")
        self.assertEqual(rc, EX_USAGE)
        self.assertIn("-y", err)
        self.assertEqual(r.execute_command("SCARD", "gone"), 2)
        res = json.loads(self.ok(*self.srv_args(srv), "-y", "--json",
                                 "delete", "gone"))
        self.assertEqual(res, {"queue": "gone", "deleted": True,
                               "messages": 2})
        self.assertEqual(r.execute_command("SCARD", "gone"), 0)
        self.assertEqual(r.execute_command("SCARD", "kept"), 1)
        rc, out, err = dqctl(*self.srv_args(srv), "-y", "delete", "gone")
        self.assertEqual(rc, EX_ERR)
        self.assertIn("no queue", err)

    def test_password(self):
        srv = self.server(requirepass="s3cret")
        srv.client().execute_command("SADD", "q", "a", 0)
        rc, out, err = dqctl(*self.srv_args(srv), "queues")
        self.assertEqual(rc, EX_AUTH)
        self.assertIn("password", err)
        rc, out, err = dqctl(*self.srv_args(srv), "-a", "wrong", "queues")
        self.assertEqual(rc, EX_AUTH)
        self.assertIn("q", self.ok(*self.srv_args(srv), "-a", "s3cret",
                                   "queues"))
        self.assertIn("q", self.ok(*self.srv_args(srv), "queues",
                                   env={"DQCTL_AUTH": "s3cret"}))
        # -c takes port, password and data_dir from dqd.conf.
        self.assertIn("q", self.ok("-c", srv.conf_file, "queues"))

    def test_unreachable(self):
        port = dqtest.free_port()
        for cmd in (["status"], ["queues"], ["stat", "q"], ["peek", "q"],
                    ["-y", "delete", "q"]):
            rc, out, err = dqctl("-p", port, *cmd)
            self.assertEqual(rc, EX_UNREACH, "%r: %s" % (cmd, err))
            self.assertIn("cannot connect", err)
            self.assertEqual(out, "")

    def test_server_full(self):
        """A server at maxclients answers the connection with an error
        and closes it: dqctl said "refused the password" (exit 4) or
        "INFO: unexpected reply" (exit 1)."""
        srv = self.server(workers=1, maxclients=2, requirepass="pw")
        held = [srv.connect() for _ in range(2)]
        for s in held:
            s.sendall(dqtest.resp_cmd("AUTH", "pw"))
            self.assertEqual(dqtest.read_raw(s, replies=1), b"+OK\r\n")
        for args in (["-a", "pw", "status"], ["status"],
                     ["-a", "pw", "queues"], ["-a", "pw", "stat", "q"]):
            with self.subTest(args=args):
                rc, out, err = dqctl(*self.srv_args(srv), *args)
                self.assertEqual(rc, EX_UNREACH, err)
                self.assertIn("maxclients", err)
                self.assertNotIn("password", err)
        for s in held:
            s.close()

    def test_bad_input(self):
        cases = [
            ([], EX_USAGE),
            (["frobnicate"], EX_USAGE),
            (["stat"], EX_USAGE),
            (["stat", "a", "b"], EX_USAGE),
            (["peek"], EX_USAGE),
            (["peek", "q", "0"], EX_USAGE),
            (["peek", "q", "ten"], EX_USAGE),
            (["delete"], EX_USAGE),
            (["backup"], EX_USAGE),
            (["-p", "0", "status"], EX_USAGE),
            (["-p", "http", "status"], EX_USAGE),
            (["--no-such-option", "status"], EX_USAGE),
            (["verify"], EX_USAGE),          # no data directory given
            (["-d", "/nonexistent/dir", "verify"], EX_ERR),
            (["-d", "/tmp", "checkpoint"], EX_ERR),   # not a data dir
            (["-c", "/nonexistent.conf", "status"], EX_ERR),
        ]
        for args, want in cases:
            rc, out, err = dqctl(*args)
            self.assertEqual(rc, want, "dqctl %r: %d %r" % (args, rc, err))
            self.assertTrue(err.startswith("dqctl: ") or
                            err.startswith("usage:"), err)
        rc, out, err = dqctl("--help")
        self.assertEqual(rc, EX_OK)
        self.assertIn("backup DIR", out)

    # -- data directory commands ---------------------------------------
    def test_hot_backup_under_load(self):
        """A backup taken while producers run holds every message that was
        acknowledged before the backup began, and dqd starts from it."""
        self.hot_backup_under_load("write")

    def test_hot_backup_under_load_fsync(self):
        # Under fsync the next log file exists ahead of time, all zeros
        # (logprep.h): the backup must still copy the file Berkeley DB
        # writes to last, not take the prepared one for it.
        self.hot_backup_under_load("fsync")

    def hot_backup_under_load(self, durability):
        srv = self.server(workers=2, checkpoint_interval_s=1,
                          durability=durability)
        tmp = tempfile.mkdtemp(prefix="dqctl-backup-")
        self.addCleanup(shutil.rmtree, tmp, True)
        target = os.path.join(tmp, "backup")
        with Producers(srv) as load:
            time.sleep(1.0)
            begun = time.monotonic()
            res = json.loads(self.ok("-d", srv.data_dir, "--json",
                                     "backup", target))
            time.sleep(0.3)
        self.assertEqual(load.errors, [])
        before = {b for t, b in load.acked if t < begun}
        self.assertGreater(len(before), 100)
        self.assertTrue(res["dqd_running"])
        self.assertGreaterEqual(res["log_files"], 1)
        self.assertGreaterEqual(res["database_files"], 5)

        # The backup verifies clean, offline.
        v = json.loads(self.ok("-d", target, "--json", "verify"))
        self.assertEqual(v["damaged"], 0)
        self.assertEqual(v["checked"], "in place")

        # A fresh dqd on the backup directory.
        copy = self.server(workers=2, start=False)
        shutil.rmtree(copy.data_dir, ignore_errors=True)
        shutil.copytree(target, copy.data_dir)
        copy.start()
        r = copy.client()
        n = r.execute_command("SCARD", "load")
        self.assertGreaterEqual(n, len(before))
        got = set()
        for m in copy.client().execute_command("QPEEK", "load", n) \
                if self._has_qpeek(r) else []:
            got.add(m[1].decode())
        if got:
            self.assertEqual(before - got, set())
        # Everything in the backup was acknowledged at some point.
        self.assertLessEqual(n, len(load.acked))
        copy.stop()

    def _has_qpeek(self, r):
        try:
            r.execute_command("QPEEK", "nothing", 1)
            return True
        except redis.ResponseError:
            return False

    def test_backup_refuses_bad_targets(self):
        srv = self.server()
        srv.client().execute_command("SADD", "q", "a", 0)
        tmp = tempfile.mkdtemp(prefix="dqctl-backup-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, "junk"), "w") as f:
            f.write("x")
        rc, out, err = dqctl("-d", srv.data_dir, "backup", tmp)
        self.assertEqual(rc, EX_ERR)
        self.assertIn("not empty", err)
        self.assertEqual(os.listdir(tmp), ["junk"])
        # Refused before anything is created: no empty directory is left
        # in the data directory, under any spelling of it.
        for inside in (os.path.join(srv.data_dir, "inside"),
                       os.path.join(srv.data_dir, "inside") + "/",
                       os.path.join(srv.data_dir, ".", "sub")):
            with self.subTest(target=inside):
                rc, out, err = dqctl("-d", srv.data_dir, "backup", inside)
                self.assertEqual(rc, EX_ERR)
                self.assertIn("inside the data directory", err)
                self.assertFalse(os.path.exists(inside),
                                 "%s left behind" % inside)
        rc, out, err = dqctl("-d", srv.data_dir, "backup", "sub",
                             cwd=srv.data_dir)
        self.assertEqual(rc, EX_ERR)
        self.assertIn("inside the data directory", err)
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "sub")))
        # the parent must exist (README and dqctl(8) create it first)
        nested = os.path.join(tmp, "dqd", "2026-11-24")
        rc, out, err = dqctl("-d", srv.data_dir, "backup", nested)
        self.assertEqual(rc, EX_ERR)
        self.assertIn("cannot create %s" % nested, err)
        self.assertFalse(os.path.exists(os.path.join(tmp, "dqd")))
        os.mkdir(os.path.join(tmp, "dqd"), 0o700)
        rc, out, err = dqctl("-d", srv.data_dir, "backup", nested)
        self.assertEqual(rc, 0, err)

    def test_verify_checkpoint_running_and_stopped(self):
        srv = self.server()
        srv.client().execute_command("SADD", "q", "a", 0, "b", 5000)
        v = json.loads(self.ok("-d", srv.data_dir, "--json", "verify"))
        self.assertEqual(v["damaged"], 0)
        self.assertEqual(v["checked"], "hot copy")
        self.assertIn("queues.db", [f["file"] for f in v["files"]])
        self.assertIn("every database file is sound",
                      self.ok("-d", srv.data_dir, "verify"))
        c = json.loads(self.ok("-d", srv.data_dir, "--json", "checkpoint"))
        self.assertTrue(c["dqd_running"])
        self.assertGreaterEqual(c["log_files_after"], 1)
        # The server is still fine.
        self.assertEqual(srv.client().execute_command("SCARD", "q"), 2)

        srv.stop()
        v = json.loads(self.ok("-d", srv.data_dir, "--json", "verify"))
        self.assertEqual(v["checked"], "in place")
        self.assertEqual(v["damaged"], 0)
        c = json.loads(self.ok("-c", srv.conf_file, "--json",
                               "checkpoint"))
        self.assertFalse(c["dqd_running"])
        srv.start()
        self.assertEqual(srv.client().execute_command("SCARD", "q"), 2)

    def test_verify_finds_damage(self):
        srv = self.server()
        srv.client().execute_command("SADD", "q", "a", 0)
        srv.stop()
        path = os.path.join(srv.data_dir, "qnames.db")
        with open(path, "r+b") as f:
            f.seek(4096 + 26)
            f.write(b"\xff" * 2000)
        rc, out, err = dqctl("-d", srv.data_dir, "verify")
        self.assertEqual(rc, EX_DAMAGED, out + err)
        self.assertIn("DAMAGED", out)

    def test_recover(self):
        srv = self.server()
        srv.client().execute_command("SADD", "q", "a", 0, "b", 0)
        rc, out, err = dqctl("-d", srv.data_dir, "recover")
        self.assertEqual(rc, EX_INUSE)
        self.assertIn("Stop dqd", err)
        self.assertEqual(srv.client().execute_command("SCARD", "q"), 2)
        srv.kill9()
        out = self.ok("-d", srv.data_dir, "recover")
        self.assertIn("dqd can start", out)
        res = json.loads(self.ok("-d", srv.data_dir, "--json", "recover",
                                 "--catastrophic"))
        self.assertTrue(res["catastrophic"])
        srv.start()
        self.assertEqual(srv.client().execute_command("SCARD", "q"), 2)


if __name__ == "__main__":
    if not os.access(DQCTL, os.X_OK):
        import sys
        sys.stderr.write("test_dqctl: %s is not executable (set DQCTL)\n"
                         % DQCTL)
        sys.exit(99)
    dqtest.main()
