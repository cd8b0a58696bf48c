"""The LSB init script (etc/dqd.init.in) driving a dqd built in the tree:
start, status, reload, restart, stop, with their exit codes, the pidfile
and the processes; in both modes (start-stop-daemon --background with
readiness notification, and dqd's own daemonize = true).

Environment: DQD (default /tmp/build/dqd), SRCDIR (the source tree;
default: two levels above this file).
"""
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import redis

import dqtest

SRCDIR = os.environ.get("SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DQD = os.path.abspath(dqtest.DQD)


class InitScript:
    def __init__(self, daemonize):
        self.tmp = tempfile.mkdtemp(prefix="dqinit-")
        self.port = dqtest.free_port()
        # data_dir is relative: it must land in DQD_HOME.
        self.data = os.path.join(self.tmp, "home", "data")
        self.pidfile = os.path.join(self.tmp, "run", "dqd.pid")
        self.logfile = os.path.join(self.tmp, "log", "dqd.log")
        self.conf = os.path.join(self.tmp, "dqd.conf")
        self.script = os.path.join(self.tmp, "dqd.init")
        self.daemonize = daemonize
        with open(os.path.join(SRCDIR, "etc", "dqd.init.in")) as f:
            text = f.read()
        for k, v in (("@sbindir@", "/nonexistent/sbin"),
                     ("@sysconfdir@", "/nonexistent/etc"),
                     ("@runstatedir@", "/nonexistent/run"),
                     ("@localstatedir@", "/nonexistent/var")):
            text = text.replace(k, v)
        with open(self.script, "w") as f:
            f.write(text)
        os.chmod(self.script, 0o755)
        self.defaults = os.path.join(self.tmp, "defaults")
        with open(self.defaults, "w") as f:
            f.write('DQD="%s"\nCONF="%s"\nPIDFILE="%s"\nLOGFILE="%s"\n'
                    'DQD_USER=""\nDQD_HOME="%s"\nDAEMONIZE=%s\nSTOP_TIMEOUT=20\n'
                    % (DQD, self.conf, self.pidfile, self.logfile,
                       os.path.join(self.tmp, "home"),
                       "yes" if daemonize else "no"))
        self.write_conf()

    def write_conf(self, extra="", **over):
        settings = {"bind": "127.0.0.1", "port": self.port, "workers": 2,
                    "data_dir": "data", "log_level": "info"}
        if self.daemonize:
            settings.update(daemonize=True, pidfile=self.pidfile,
                            log_file=self.logfile)
        settings.update(over)
        # Whole or not at all (rename), as editors save: a master still
        # reading it for an earlier reload must never see it half written
        # (an empty file is valid and has no pidfile: the master removed
        # its pidfile, and the next reload found dqd not running).
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(dqtest.conf_text(settings) + extra)
        os.replace(tmp, self.conf)

    def run(self, action, timeout=60):
        env = dict(os.environ, DQD_DEFAULTS=self.defaults)
        p = subprocess.run([self.script, action], capture_output=True,
                           timeout=timeout, env=env)
        return (p.returncode, p.stdout.decode("utf-8", "replace") +
                p.stderr.decode("utf-8", "replace"))

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port,
                           socket_timeout=5)

    def logs(self, whole=False):
        try:
            with open(self.logfile, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if whole else text[-5000:]

    def masters(self):
        """Pids of the dqd processes started with this script's file,
        found by their command line: a failed test may have lost the
        pidfile (the master removes it when a reload drops it)."""
        found = []
        want = ("-c\0%s\0" % self.conf).encode()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if want in f.read():
                        found.append(int(d))
            except OSError:
                pass
        return found

    def cleanup(self):
        pids = set(self.masters())
        pid = self.pid()
        if pid and dqtest.pid_alive(pid):
            pids.add(pid)
        for p in list(pids):
            pids.update(dqtest.children_of(p))
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pids:
            time.sleep(0.5)
        shutil.rmtree(self.tmp, ignore_errors=True)


class InitdTest(unittest.TestCase):

    def lifecycle(self, daemonize):
        s = InitScript(daemonize)
        self.addCleanup(s.cleanup)

        rc, out = s.run("status")
        self.assertEqual(rc, 3, out)
        self.assertIn("not running", out)

        rc, out = s.run("start")
        self.assertEqual(rc, 0, out + s.logs())
        pid = s.pid()
        self.assertIsNotNone(pid, "no pidfile after start")
        self.assertTrue(dqtest.pid_alive(pid))
        # Ready when start returns (readiness notification), or very soon.
        deadline = time.monotonic() + 10
        while True:
            try:
                self.assertTrue(s.client().ping())
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertEqual(s.client().execute_command("SADD", "q", "a", 0,
                                                    "b", 60000), 2)
        workers = dqtest.children_of(pid)
        self.assertGreaterEqual(len(workers), 3)    # 2 workers + housekeeper
        self.assertTrue(os.path.exists(os.path.join(s.data, "queues.db")))

        # start again: nothing happens, success (LSB).
        rc, out = s.run("start")
        self.assertEqual(rc, 0, out)
        self.assertEqual(s.pid(), pid)

        rc, out = s.run("status")
        self.assertEqual(rc, 0, out)
        self.assertIn(str(pid), out)

        # reload: same master, new workers, still serving.
        rc, out = s.run("reload")
        self.assertEqual(rc, 0, out)
        deadline = time.monotonic() + 10
        while set(dqtest.children_of(pid)) & set(workers):
            self.assertLess(time.monotonic(), deadline,
                            "workers not replaced after reload")
            time.sleep(0.1)
        self.assertEqual(s.pid(), pid)
        self.assertEqual(s.client().execute_command("SCARD", "q"), 2)
        workers = dqtest.children_of(pid)
        rc, out = s.run("force-reload")
        self.assertEqual(rc, 0, out)
        # the signal is handled after the script returns: let it be
        deadline = time.monotonic() + 10
        while set(dqtest.children_of(pid)) & set(workers):
            self.assertLess(time.monotonic(), deadline,
                            "workers not replaced after force-reload")
            time.sleep(0.1)

        # A broken configuration: reload refuses, dqd keeps running.
        s.write_conf("no_such_key = 1;\n")
        rc, out = s.run("reload")
        self.assertEqual(rc, 1, out)
        self.assertIn("no_such_key", out)
        self.assertTrue(dqtest.pid_alive(pid))
        rc, out = s.run("restart")
        self.assertEqual(rc, 1, out)
        self.assertTrue(dqtest.pid_alive(pid))
        s.write_conf()

        # restart: a new master on the same data.
        rc, out = s.run("restart")
        self.assertEqual(rc, 0, out + s.logs())
        new = s.pid()
        self.assertIsNotNone(new)
        self.assertNotEqual(new, pid)
        self.assertFalse(dqtest.pid_alive(pid))
        deadline = time.monotonic() + 10
        while True:
            try:
                self.assertEqual(s.client().execute_command("SCARD", "q"),
                                 2)
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        # stop: everything gone, pidfile removed.
        kids = dqtest.children_of(new)
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)
        for p in [new] + kids:
            self.assertFalse(dqtest.pid_alive(p), "pid %d left" % p)
        self.assertFalse(os.path.exists(s.pidfile))
        rc, out = s.run("status")
        self.assertEqual(rc, 3, out)
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)
        rc, out = s.run("reload")
        self.assertEqual(rc, 7, out)

        # A stale pidfile: status says so, start still works.
        with open(s.pidfile, "w") as f:
            f.write("%d\n" % new)
        rc, out = s.run("status")
        self.assertEqual(rc, 1, out)
        rc, out = s.run("start")
        self.assertEqual(rc, 0, out + s.logs())
        self.assertNotEqual(s.pid(), new)
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)

        rc, out = s.run("bogus")
        self.assertEqual(rc, 3)
        self.assertIn("usage", out)
        # Every stop was quiet: start-stop-daemon --notify-await had
        # removed its socket long before dqd said STOPPING=1.
        log = s.logs(whole=True)
        self.assertIn("stopped", log)
        self.assertNotIn("sd_notify", log)

    def test_background_with_notify(self):
        self.lifecycle(daemonize=False)

    def test_daemonize(self):
        self.lifecycle(daemonize=True)

    def test_daemonize_true_with_the_default_mode(self):
        """DAEMONIZE=no (start-stop-daemon --background --notify-await)
        but daemonize = true in dqd.conf, an easy mix-up: dqd detached
        from the process whose pid start-stop-daemon wrote, so status
        said "not running but the pidfile exists" and stop found nothing
        to stop.  dqd now stays in the foreground when NOTIFY_SOCKET is
        set."""
        s = InitScript(daemonize=False)
        self.addCleanup(s.cleanup)
        s.write_conf("daemonize = true;\n")
        rc, out = s.run("start")
        self.assertEqual(rc, 0, out + s.logs())
        pid = s.pid()
        time.sleep(0.5)
        rc, out = s.run("status")
        self.assertEqual(rc, 0, out + s.logs())
        self.assertTrue(s.client().ping())
        self.assertEqual(s.client().info("server")["process_id"], pid)
        kids = dqtest.children_of(pid)
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)
        for p in [pid] + kids:
            self.assertFalse(dqtest.pid_alive(p), "pid %d left" % p)

    def test_daemonize_yes_without_daemonize_true(self):
        """DAEMONIZE=yes with a dqd.conf that does not detach (or writes
        another pidfile): start-stop-daemon ran dqd in the foreground and
        start never returned.  It now refuses at once and says why."""
        for over in ({"daemonize": False},
                     {"pidfile": "/tmp/elsewhere.pid"}):
            with self.subTest(**over):
                s = InitScript(daemonize=True)
                self.addCleanup(s.cleanup)
                s.write_conf(**over)
                t0 = time.monotonic()
                rc, out = s.run("start", timeout=30)
                self.assertEqual(rc, 1, out)
                self.assertLess(time.monotonic() - t0, 10)
                self.assertIn("DAEMONIZE=yes needs daemonize = true", out)
                rc, out = s.run("status")
                self.assertEqual(rc, 3, out)
                with self.assertRaises(redis.ConnectionError):
                    s.client().ping()

    def test_logrotate_default_setup(self):
        """The shipped logrotate file rotates the log of the shipped
        default setup (DAEMONIZE=no, log_file = "": standard error goes to
        LOGFILE through start-stop-daemon): dqd's next lines go to the new
        file, not to the rotated one."""
        logrotate = shutil.which("logrotate")
        if logrotate is None:
            raise AssertionError("logrotate is needed by this test "
                                 "(quickstart.sh test installs it)")
        s = InitScript(False)
        self.addCleanup(s.cleanup)
        rc, out = s.run("start")
        self.assertEqual(rc, 0, out + s.logs())
        with open(os.path.join(SRCDIR, "etc", "dqd.logrotate.in")) as f:
            text = f.read()
        text = text.replace("@localstatedir@/log/dqd",
                            os.path.dirname(s.logfile))
        text = text.replace("@runstatedir@", os.path.join(s.tmp, "run"))
        # An install has the dqd user; this machine may not.
        text = text.replace(" dqd adm", " %s %s" % (
            pwd.getpwuid(os.getuid()).pw_name,
            grp.getgrgid(os.getgid()).gr_name))
        conf = os.path.join(s.tmp, "logrotate.conf")
        with open(conf, "w") as f:
            f.write(text)
        p = subprocess.run([logrotate, "-f", "-s",
                            os.path.join(s.tmp, "logrotate.state"), conf],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rotated = s.logfile + ".1"
        self.assertTrue(os.path.exists(rotated), os.listdir(
            os.path.dirname(s.logfile)))
        rc, out = s.run("reload")
        self.assertEqual(rc, 0, out)
        deadline = time.monotonic() + 10
        while "reloaded" not in s.logs():
            if time.monotonic() > deadline:
                with open(rotated, errors="replace") as f:
                    self.fail("nothing logged to %s after the rotation; "
                              "%s has:\n%s" % (s.logfile, rotated,
                                                f.read()[-2000:]))
            time.sleep(0.1)
        with open(rotated, errors="replace") as f:
            old = f.read()
        self.assertIn("ready to accept", old)
        self.assertNotIn("reload", old)
        # dqd and start-stop-daemon write with O_APPEND: after the
        # truncation the file starts again at its beginning, no hole
        with open(s.logfile, "rb") as f:
            self.assertNotIn(b"\0", f.read())
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)

    def test_start_fails_on_bad_config(self):
        s = InitScript(False)
        self.addCleanup(s.cleanup)
        s.write_conf("cache_size_mb = 0;\n")
        rc, out = s.run("start")
        self.assertEqual(rc, 1, out)
        self.assertIn("cache_size_mb", out)
        # the status line is ended once, and the reason has its own line
        self.assertEqual(out.count("failed"), 1, out)
        self.assertTrue(any(l.startswith("dqd: ") and "cache_size_mb" in l
                            for l in out.splitlines()), out)
        rc, out = s.run("status")
        self.assertEqual(rc, 3, out)
        # a relative path in the file is from DQD_HOME, where dqd runs,
        # and the directories the script makes exist for the check
        home = os.path.join(s.tmp, "home")
        os.makedirs(os.path.join(home, "sub"))
        s.write_conf(data_dir="sub/data", pidfile="../run/dqd.pid")
        rc, out = s.run("start")
        self.assertEqual(rc, 0, out)
        self.assertTrue(os.path.isdir(os.path.join(home, "sub", "data")), out)
        rc, out = s.run("stop")
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    if not os.access(DQD, os.X_OK):
        import sys
        sys.stderr.write("test_initd: %s is not executable (set DQD)\n"
                         % DQD)
        sys.exit(99)
    unittest.main(verbosity=2)
