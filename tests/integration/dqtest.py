"""dqtest: a small harness to drive a real dqd in integration tests.

Python 3 standard library plus redis-py (Debian's python3-redis).

    import dqtest
    class T(dqtest.TestCase):
        def test_x(self):
            srv = self.server(maxclients=3)      # started, stopped at cleanup
            r = srv.client()                     # redis.Redis
            out = srv.cli("spop", "q", "3")      # redis-cli output (str)
            reply = srv.raw(b"PING\\r\\n")        # raw bytes
            srv.stop()                           # SIGTERM, asserts exit 0
            srv.start()                          # same data dir
    if __name__ == "__main__":
        dqtest.main()

Every server gets its own free loopback port and its own temporary
directory (config, data dir, log files), removed at cleanup.  When a test
fails, the logs of the servers it started are printed.

Environment: DQD (default /tmp/build/dqd), REDIS_CLI (default redis-cli).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

DQD = os.environ.get("DQD") or "/tmp/build/dqd"
REDIS_CLI = os.environ.get("REDIS_CLI") or "redis-cli"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

# Servers started by the test currently running (for log dumps on failure).
_current_servers = []


def sanitized():
    """dqd is built with --enable-sanitizers: ASan keeps freed memory in
    its quarantine, so figures of resident memory say nothing."""
    with open(DQD, "rb") as f:
        return b"__asan_init" in f.read()


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def close_client(r):
    """Really close a redis.Redis' sockets (redis-py 4.3's close() keeps
    the pool's connections open)."""
    try:
        r.close()
        r.connection_pool.disconnect()
    except Exception:
        pass


def port_busy(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def conf_value(v):
    """A Python value as libconfig text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ " + " ".join("%s = %s;" % (k, conf_value(x))
                               for k, x in v.items()) + " }"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % s


def conf_text(settings):
    return "".join("%s = %s;\n" % (k, conf_value(v))
                   for k, v in settings.items())


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


def proc_start(pid):
    """When pid started (clock ticks since boot), or None: with the pid,
    it names one process even after the pid is reused."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    return int(st[st.rfind(")") + 2:].split()[19])


def children_of(pid):
    """Pids of the direct children of pid (from /proc)."""
    kids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids



def worker_of(client):
    """Pid of the worker process serving this connection (INFO server)."""
    return int(client.info("server")["worker_pid"])


def clients_on_workers(srv, n, tries=150, **kw):
    """n clients, each served by a different worker: {pid: client}.

    The workers balance connections by their share of all connections, so
    the extra connections stay open until every worker has one (a worker
    with a lone client may otherwise take every new connection)."""
    seen, extra = {}, []
    try:
        for _ in range(tries):
            c = srv.client(**kw)
            pid = worker_of(c)
            if pid not in seen:
                seen[pid] = c
            else:
                extra.append(c)
            if len(seen) == n:
                return seen
            time.sleep(0.02)
    finally:
        for c in extra:
            close_client(c)
    raise AssertionError("connections never reached %d workers: %r"
                         % (n, list(seen)))


class Server:
    """One dqd under test: its own port, temp dir, config and logs."""

    def __init__(self, workers=2, durability="write", extra=None,
                 keep_config=False, **settings):
        self.tmp = tempfile.mkdtemp(prefix="dqtest-")
        self.port = free_port()
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_file = os.path.join(self.tmp, "dqd.log")
        self.stderr_file = os.path.join(self.tmp, "dqd.stderr")
        self.conf_file = os.path.join(self.tmp, "dqd.conf")
        self.password = settings.get("requirepass") or None
        self.settings = {
            "bind": "127.0.0.1",
            "port": self.port,
            "workers": workers,
            "data_dir": self.data_dir,
            "durability": durability,
            "log_file": self.log_file,
            "log_level": "info",
            # The free-space guard refuses enqueues below 152 MiB free
            # with the defaults: on a machine short of disk every test
            # would fail for it.  The tests of the guard set it.
            "min_free_disk_mb": 0,
        }
        self.settings.update(settings)
        self.extra = extra or ""
        self.proc = None
        self._started_once = False
        self.last_exit = None
        self._clients = []
        self._saved_logs = ""
        self.write_config()
        _current_servers.append(self)

    # -- configuration ------------------------------------------------
    def write_config(self):
        with open(self.conf_file, "w") as f:
            f.write(conf_text(self.settings))
            f.write(self.extra)

    # -- lifecycle -----------------------------------------------------
    def start(self, wait=True, timeout=START_TIMEOUT):
        """Start dqd on this server's config and data dir.  On the first
        start, if the port was grabbed by someone else in the meantime,
        retry on another free port."""
        for attempt in range(3):
            try:
                return self._start(wait, timeout)
            except AssertionError:
                if (self._started_once or attempt == 2 or
                        self.settings.get("port") != self.port or
                        "in use" not in self.logs()):
                    raise
                self.port = free_port()
                self.settings["port"] = self.port
                self.write_config()
                with open(self.stderr_file, "ab") as f:
                    f.write(b"---- port busy, retrying on %d\n" % self.port)

    def _start(self, wait, timeout):
        assert self.proc is None or self.proc.poll() is not None, \
            "dqd already running"
        self._stderr = open(self.stderr_file, "ab")
        self._stderr.write(b"---- start %s -c %s\n" %
                           (DQD.encode(), self.conf_file.encode()))
        self._stderr.flush()
        self.proc = subprocess.Popen([DQD, "-c", self.conf_file],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._stderr,
                                     stderr=self._stderr,
                                     cwd=self.tmp)
        self._stderr.close()
        if wait:
            self.wait_ready(timeout)
            self._started_once = True
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "dqd exited with %s during start-up\n%s"
                    % (self.proc.returncode, self.logs()))
            try:
                r = redis.Redis(host="127.0.0.1", port=self.port,
                                password=self.password,
                                socket_timeout=2, socket_connect_timeout=1)
                ok = r.ping()
                close_client(r)
                if ok:
                    return
            except (redis.RedisError, OSError) as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("dqd did not answer PING within %.0f s (%r)\n%s"
                             % (timeout, last, self.logs()))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self):
        return children_of(self.proc.pid) if self.running() else []

    def _close_clients(self):
        for c in self._clients:
            close_client(c)
        self._clients = []

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM to the master only; wait; assert exit status 0."""
        if not self.running():
            return self.last_exit
        self._close_clients()
        workers = {p: proc_start(p) for p in self.worker_pids()}
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError("dqd did not stop within %.0f s of SIGTERM\n%s"
                                 % (timeout, self.logs()))
        self.last_exit = rc
        self._wait_gone(workers, 5)
        if check:
            assert rc == 0, "dqd exited with status %r after SIGTERM\n%s" % (
                rc, self.logs())
        return rc

    def kill9(self):
        """SIGKILL the master and all its workers at once (a crash)."""
        if not self.running():
            return
        self._close_clients()
        pids = [self.proc.pid] + self.worker_pids()
        started = {p: proc_start(p) for p in pids}
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.last_exit = self.proc.wait(10)
        self._wait_gone(started, 10)

    @staticmethod
    def _wait_gone(started, timeout):
        """Waits for the processes {pid: start time} to end.  A pid taken
        by another process meanwhile is not ours: a parallel test's dqd
        was once killed here as a stray."""
        def ours(p):
            return pid_alive(p) and proc_start(p) == started[p]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(ours(p) for p in started):
                return
            time.sleep(0.02)
        left = [p for p in started if ours(p)]
        for p in left:       # never leave strays behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise AssertionError("dqd processes %r still alive" % left)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        try:
            if self.running():
                self.kill9()
        finally:
            self._saved_logs = self.logs()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- access ----------------------------------------------------------
    def client(self, **kw):
        args = dict(host="127.0.0.1", port=self.port, password=self.password,
                    socket_timeout=10)
        args.update(kw)
        c = redis.Redis(**args)
        self._clients.append(c)
        return c

    def cli(self, *args, auth=True, input=None, check=True, timeout=20):
        """Run redis-cli -p PORT ARGS...; return its stdout (str)."""
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
        env = dict(os.environ)
        if auth and self.password:
            env["REDISCLI_AUTH"] = self.password
        cmd += [str(a) for a in args]
        p = subprocess.run(cmd, input=input, capture_output=True,
                           timeout=timeout, env=env)
        if check:
            assert p.returncode == 0, "%r exited %d: %r %r" % (
                cmd, p.returncode, p.stdout, p.stderr)
        return p.stdout.decode("utf-8", "replace")

    def connect(self, timeout=5):
        """A raw socket connected to the server."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout)
        s.settimeout(timeout)
        return s

    def raw(self, data, timeout=3.0, expect=None, replies=None, sock=None):
        """Send raw bytes on a new connection (or sock); return the raw
        bytes received.

        Reads until `expect` bytes, or `replies` complete RESP replies, or
        the peer closes, or timeout.  When data consists of whole RESP
        commands and neither expect nor replies is given, one reply per
        command is awaited; otherwise reading stops once the connection
        has been quiet for 0.2 s after a complete reply."""
        if expect is None and replies is None:
            replies = count_resp_commands(data)
        own = sock is None
        s = sock or self.connect()
        try:
            if data:
                s.sendall(data)
            return read_raw(s, timeout=timeout, expect=expect, replies=replies)
        finally:
            if own:
                s.close()

    # -- logs --------------------------------------------------------------
    def logs(self):
        if not os.path.isdir(self.tmp):
            return self._saved_logs
        out = []
        for name in (self.stderr_file, self.log_file):
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if len(data) > 20000:
                data = b"...\n" + data[-20000:]
            out.append("==== %s ====\n%s" % (
                os.path.basename(name), data.decode("utf-8", "replace")))
        return "\n".join(out)


def count_resp_commands(data):
    """Number of whole RESP commands data consists of, or None."""
    if not data or not data.startswith(b"*"):
        return None
    try:
        n, p = 0, 0
        while p < len(data):
            if data[p:p + 1] != b"*":
                return None
            p = resp_complete(data, p)
            if p is None:
                return None
            n += 1
        return n
    except ValueError:
        return None


def count_replies(buf):
    n, p = 0, 0
    while p < len(buf):
        try:
            p = resp_complete(buf, p)
        except ValueError:
            return n
        if p is None:
            return n
        n += 1
    return n


def read_raw(s, timeout=3.0, expect=None, replies=None, quiet=0.2):
    """Read from socket s until `expect` bytes were seen, or `replies`
    complete RESP replies (then 20 ms more for stray extra bytes), or the
    peer closes, or (with neither) at least one complete reply is in and
    the connection has been quiet for `quiet` s; give up after timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf
        wait = left
        if expect is not None:
            if len(buf) >= expect:
                return buf
        elif replies is not None:
            if count_replies(buf) >= replies:
                wait = min(left, 0.02)
        elif buf and resp_complete(buf) is not None:
            wait = min(left, quiet)
        s.settimeout(wait)
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            if wait < left:
                return buf
            continue
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def resp_complete(buf, pos=0):
    """End offset of the RESP2 reply starting at pos, or None if partial."""
    if pos >= len(buf):
        return None
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    t = buf[pos:pos + 1]
    line = buf[pos + 1:nl]
    if t in (b"+", b"-", b":"):
        return nl + 2
    if t == b"$":
        n = int(line)
        if n < 0:
            return nl + 2
        end = nl + 2 + n + 2
        return end if len(buf) >= end else None
    if t == b"*":
        if not line.lstrip(b"-").isdigit():
            raise ValueError("bad multibulk length %r" % line)
        n = int(line)
        p = nl + 2
        for _ in range(max(n, 0)):
            p = resp_complete(buf, p)
            if p is None:
                return None
        return p
    return nl + 2   # not RESP: treat the line as complete


def resp_parse(buf, pos=0):
    """Parse one RESP2 reply: (value, end). Errors become RespError."""
    nl = buf.index(b"\r\n", pos)
    t = buf[pos:pos + 1]
    line = buf[pos + 1:nl]
    if t == b"+":
        return line.decode(), nl + 2
    if t == b"-":
        return RespError(line.decode("utf-8", "replace")), nl + 2
    if t == b":":
        return int(line), nl + 2
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, nl + 2
        return buf[nl + 2:nl + 2 + n], nl + 2 + n + 2
    if t == b"*":
        n = int(line)
        if n < 0:
            return None, nl + 2
        p = nl + 2
        out = []
        for _ in range(n):
            v, p = resp_parse(buf, p)
            out.append(v)
        return out, p
    raise ValueError("not RESP at %d: %r" % (pos, buf[pos:pos + 40]))


def resp_parse_all(buf):
    out, p = [], 0
    while p < len(buf):
        v, p = resp_parse(buf, p)
        out.append(v)
    return out


class RespError(str):
    pass


def resp_cmd(*args):
    """Encode a command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def is_closed(s, timeout=2.0):
    """True if the peer closed socket s (EOF/reset) within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True
    return False


class TestCase(unittest.TestCase):
    """unittest.TestCase with self.server(...) that starts a dqd and
    cleans it up, printing its logs when the test fails."""

    def server(self, start=True, **kw):
        srv = Server(**kw)
        self.addCleanup(srv.cleanup)
        if start:
            srv.start()
        return srv

    def assertRaisesMsg(self, prefix, fn, *a, **kw):
        """fn(*a) must raise redis.ResponseError whose text starts with
        prefix (case-sensitive); returns the message.  Note: redis-py
        strips a leading "ERR " from error texts."""
        try:
            v = fn(*a, **kw)
        except redis.ResponseError as e:
            msg = str(e)
            self.assertTrue(msg.startswith(prefix),
                            "error %r does not start with %r" % (msg, prefix))
            return msg
        self.fail("expected error %r, got reply %r" % (prefix, v))


    def assertErrRaw(self, srv, prefix, *args):
        """Send one command over a fresh raw connection; the reply must be
        an error line starting with prefix (e.g. "-ERR ").  Returns it."""
        reply = srv.raw(resp_cmd(*args))
        self.assertTrue(reply.startswith(prefix.encode()) and
                        reply.endswith(b"\r\n") and reply.count(b"\r\n") == 1,
                        "%r: expected an error line starting with %r, got %r"
                        % (args, prefix, reply))
        return reply.decode("utf-8", "replace")


class Workers:
    """Threads running self.run(t) until stopped: `with` starts them and,
    at the end, sets self.stopping and joins them."""

    def __init__(self, nthreads):
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, args=(t,))
                        for t in range(nthreads)]

    def run(self, t):
        raise NotImplementedError

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(30)


class ServerCase(TestCase):
    """A fresh dqd per test (started with server_kw) and a redis-py
    client on it: self.srv, self.r."""
    server_kw = {}

    def setUp(self):
        self.srv = self.server(**self.server_kw)
        self.r = self.srv.client()

    def x(self, *args):
        return self.r.execute_command(*args)

    def err(self, *args):
        """The command must fail with an -ERR reply; the connection stays
        usable.  Returns the message (without "ERR ")."""
        try:
            v = self.r.execute_command(*args)
        except redis.ResponseError as e:
            self.assertTrue(self.r.ping())
            return str(e)
        self.fail("%r: expected an error, got %r" % (args[:6], v))


class _Result(unittest.TextTestResult):
    def startTest(self, test):
        del _current_servers[:]
        super().startTest(test)

    def _dump(self, test):
        for srv in list(_current_servers):
            self.stream.write("\n---- dqd logs for %s (port %d) ----\n%s\n"
                              % (test.id(), srv.port, srv.logs()))
        self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._dump(subtest)


def main():
    """Run the calling module's tests verbosely; exit 0 only if all pass."""
    if not os.access(DQD, os.X_OK):
        sys.stderr.write("dqtest: %s is not executable (set DQD)\n" % DQD)
        sys.exit(99)   # automake: hard error
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_Result,
                                     stream=sys.stdout)
    unittest.main(testRunner=runner, verbosity=2)
