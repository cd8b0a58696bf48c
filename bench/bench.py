#!/usr/bin/env python3
"""dqd benchmarks against Redis and beanstalkd (issue 6; bench/README.md).

Starts every server itself, on loopback, each with its own data directory,
drives them with bench/loadgen and writes Markdown, CSV, JSON and a plot to
bench/results/.  Standard library only.

    bench.py --quick          # bench-quick: backlogs 0 and 1M, < 5 minutes
    bench.py                  # bench: backlogs 0, 1M and 10M
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BODY = 100                      # message body bytes, every system
CACHE_MB = 64                   # dqd cache_size_mb
DAY_DELAYS = "3600000:90000000"  # waiting messages: due 1 h to 25 h out
SYSTEMS = ("dqd", "redis", "beanstalkd")

# Durability pairs (issue 6): what each system runs with, stated in the output.
SETUPS = {
    "write": {
        "dqd": 'durability = "write" (fsync by the housekeeper every 1000 ms)',
        "redis": "appendonly yes, appendfsync everysec",
        "beanstalkd": "-b DIR -f 1000 (binlog, fsync at most every 1000 ms)",
    },
    "fsync": {
        "dqd": 'durability = "fsync" (group commit)',
        "redis": "appendonly yes, appendfsync always",
        "beanstalkd": "-b DIR -f 0 (binlog, fsync every write)",
    },
}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# Minimal clients ---------------------------------------------------------

def resp_cmd(port, *args, timeout=2.0):
    """One RESP command on a fresh connection; returns (ok, value)."""
    req = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        req += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        f = s.makefile("rb")
        return _resp_read(f)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return True, rest.decode()
    if t == b"-":
        return False, rest.decode()
    if t == b":":
        return True, int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return True, None
        d = f.read(n + 2)[:-2]
        return True, d.decode(errors="replace")
    if t == b"*":
        n = int(rest)
        out = []
        for _ in range(max(n, 0)):
            out.append(_resp_read(f)[1])
        return True, out
    raise ValueError("bad reply %r" % line)


def dqd_counts(port):
    """(cache misses, messages enqueued) so far, from dqd's INFO stats."""
    ok, text = resp_cmd(port, "INFO", "stats")
    f = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
    return int(f["cache_misses"]), int(f["messages_enqueued"])


def bs_cmd(port, cmd, timeout=2.0):
    """One beanstalkd command; returns (ok, first line, body or None)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode() + b"\r\n")
        f = s.makefile("rb")
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        line = line.decode().strip()
        body = None
        if line.startswith("OK "):
            body = f.read(int(line.split()[1]) + 2)[:-2].decode()
        ok = not line.split()[0] in ("OUT_OF_MEMORY", "INTERNAL_ERROR",
                                     "BAD_FORMAT", "UNKNOWN_COMMAND",
                                     "DRAINING")
        return ok, line, body


# Processes and their memory -----------------------------------------------

def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def memory(pid):
    """(PSS bytes, RSS bytes, processes) over pid and all its descendants."""
    pss = rss = n = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
            n += 1
        except OSError:
            pass
    return pss, rss, n


def disk_bytes(path, only_regions=False):
    total = 0
    for root, _, files in os.walk(path):
        for fn in files:
            if only_regions and not (fn.startswith("__db.") and
                                     fn[5:].isdigit()):
                continue
            try:
                total += os.lstat(os.path.join(root, fn)).st_blocks * 512
            except OSError:
                pass
    return total


# Servers ---------------------------------------------------------------------

class Server:
    """One system under test, started from scratch in its own directory."""

    def __init__(self, system, durability, workdir, args, role=""):
        self.system, self.durability, self.args = system, durability, args
        self.dir = os.path.join(workdir, "%s-%s%s" % (system, durability,
                                                      role))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "data"))
        self.port = free_port()
        self.proc = None
        self.setup = SETUPS[durability][system]

    def argv(self):
        d = os.path.join(self.dir, "data")
        if self.system == "dqd":
            conf = os.path.join(self.dir, "dqd.conf")
            with open(conf, "w") as f:
                f.write('bind = "127.0.0.1";\nport = %d;\nworkers = %d;\n'
                        'data_dir = "%s";\ndurability = "%s";\n'
                        'cache_size_mb = %d;\nlog_file = "%s";\n'
                        % (self.port, self.args.dqd_workers, d,
                           self.durability, CACHE_MB,
                           os.path.join(self.dir, "dqd.log")))
            return [self.args.dqd, "-c", conf]
        if self.system == "redis":
            return [self.args.redis_server, "--port", str(self.port),
                    "--bind", "127.0.0.1", "--daemonize", "no",
                    "--save", "", "--dir", d, "--appendonly", "yes",
                    "--appendfsync",
                    "always" if self.durability == "fsync" else "everysec",
                    "--logfile", os.path.join(self.dir, "redis.log")]
        return [self.args.beanstalkd, "-l", "127.0.0.1", "-p", str(self.port),
                "-b", d, "-f", "0" if self.durability == "fsync" else "1000"]

    def first_reply(self):
        """A real answer about the queue (not -LOADING): the server serves."""
        try:
            if self.system == "dqd":
                return resp_cmd(self.port, "SCARD", "bench")[0]
            if self.system == "redis":
                return resp_cmd(self.port, "ZCARD", "bench")[0]
            return bs_cmd(self.port, "stats-tube bench")[0]
        except OSError:
            return False

    def start(self, limit=900):
        t0 = time.monotonic()
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=out,
                                     stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        while time.monotonic() - t0 < limit:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; see %s" % (
                    self.system, self.proc.returncode, self.dir))
            if self.first_reply():
                return time.monotonic() - t0
            time.sleep(0.005)
        raise RuntimeError("%s did not answer in %d s" % (self.system, limit))

    def stop(self, limit=300):
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError("%s ignored SIGTERM for %d s" % (self.system,
                                                                 limit))
        # children (dqd's workers) are gone with the master's lock
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self._lingering():
            time.sleep(0.01)
        return time.monotonic() - t0

    def _lingering(self):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        if self.dir.encode() in f.read():
                            return True
                except OSError:
                    pass
        return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            for p in reversed(descendants(self.proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait(10)

    def dispose(self, timeout):
        """Stop (or kill, if it will not stop) and remove the data."""
        try:
            self.stop(timeout)
        except Exception:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def memory(self):
        return memory(self.proc.pid)

    def disk(self):
        return disk_bytes(os.path.join(self.dir, "data"))

    def count(self):
        if self.system == "dqd":
            return resp_cmd(self.port, "SCARD", "bench", timeout=60)[1]
        if self.system == "redis":
            return resp_cmd(self.port, "ZCARD", "bench", timeout=60)[1]
        ok, line, body = bs_cmd(self.port, "stats-tube bench", timeout=60)
        if not body:
            return 0
        st = dict(l.split(": ", 1) for l in body.splitlines() if ": " in l)
        return sum(int(st.get(k, 0)) for k in (
            "current-jobs-ready", "current-jobs-delayed",
            "current-jobs-reserved", "current-jobs-buried"))

    def supports(self, *cmd):
        """True unless the server answers 'unknown command' (a hook)."""
        ok, v = resp_cmd(self.port, *cmd)
        return ok or "unknown command" not in str(v).lower()


# Load generator ------------------------------------------------------------

def loadgen(args, srv, mode, *, conns=50, depth=1, batch=1, duration=5,
            total=0, queue="bench", delays=DAY_DELAYS, tag="t", extra=()):
    argv = [args.loadgen, "-s", srv.system if srv else "redis",
            "-p", str(srv.port if srv else args._ping_port), "-m", mode,
            "-c", str(conns), "-d", str(depth), "-b", str(batch),
            "-t", str(duration), "-n", str(total), "-q", queue,
            "-S", str(BODY), "-D", delays, "-r", str(args.seed), "-R", tag]
    argv += list(extra)
    limit = duration + 120 if not total else 3600
    if mode == "lat":
        limit = duration + 120
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=limit)
    if r.returncode != 0:
        raise RuntimeError("loadgen %s: %s" % (" ".join(argv),
                                               r.stderr.decode()))
    res = json.loads(r.stdout)
    if res["errors"]:
        log("  errors: %d, first: %s" % (res["errors"], res["first_error"]))
    return res


# The run -------------------------------------------------------------------

class Results:
    def __init__(self):
        self.rows = []          # dicts, one per measurement

    def add(self, **kw):
        self.rows.append(kw)
        return kw


FIXED_DELAY = "1800000:1800000"  # every message due 30 min out

ENQ_TESTS = [
    # name, conns, depth, batch, delays
    ("enq single, 1 conn", 1, 1, 1, DAY_DELAYS),
    ("enq single, 50 conns", 50, 1, 1, DAY_DELAYS),
    ("enq single, 50 conns, 16 pipelined", 50, 16, 1, DAY_DELAYS),
    ("enq batch 100, 50 conns", 50, 1, 100, DAY_DELAYS),
    ("enq batch 100, 50 conns, 16 pipelined", 50, 16, 100, DAY_DELAYS),
    # The common case (order timeouts): one fixed delay, so new messages
    # go to one place in the queue instead of anywhere in a day.
    ("enq single, 50 conns, fixed 30 min delay", 50, 1, 1, FIXED_DELAY),
]
ENQ_FSYNC = ENQ_TESTS[:4]


def load_backlog(args, srv, n):
    """Messages waiting (due 1-25 h out) in queue 'bench', fast."""
    conns = 4
    n -= n % (conns * 100)
    t0 = time.monotonic()
    r = loadgen(args, srv, "enq", conns=conns, depth=8, batch=250,
                duration=3000, total=n, tag="bk")
    el = time.monotonic() - t0
    log("  loaded %d in %.1f s (%.0f/s)" % (r["messages"], el,
                                            r["messages"] / el))
    return r["messages"], el


def run_deq(args, srv, tag, conns=50, batch=100, extra=()):
    """Dequeue of due messages: preload, then drain with `conns` consumers.
    The preload is sized from a first short probe so that the measured
    drain lasts about args.deq_seconds."""
    def once(n, tg):
        loadgen(args, srv, "enq", conns=4, depth=8, batch=250,
                duration=3000, total=n, queue="bench", delays="0:0", tag=tg)
        return loadgen(args, srv, "deq", conns=conns, depth=1, batch=batch,
                       duration=args.deq_seconds * 4, extra=extra)
    probe = once(20000, tag + "p")
    want = int(probe["msgs_per_s"] * args.deq_seconds)
    want = max(20000, min(want, args.deq_max))
    want -= want % 1000
    # A drain is the noisiest figure here (page reads, a checkpoint that
    # overlaps it): the median of args.deq_runs drains, the same for every
    # system; all of them go to the CSV and JSON.
    return median_run([once(want, "%sm%d" % (tag, i))
                       for i in range(args.deq_runs)], "msgs_per_s")


def median_run(runs, key):
    """The median of runs by key (the upper one of an even count), with
    every run's figure, in run order, under "runs"."""
    med = dict(sorted(runs, key=lambda r: r[key])[len(runs) // 2])
    med["runs"] = " ".join("%.0f" % r[key] for r in runs)
    return med


def enq_test(args, res, srv, name, conns, depth, batch, delays, tag,
             common):
    """One enqueue test: a row of msgs/s (and, for dqd, cache misses)."""
    if srv.system == "dqd":
        m0 = dqd_counts(srv.port)
    r = loadgen(args, srv, "enq", conns=conns, depth=depth, batch=batch,
                duration=args.seconds, tag=tag, delays=delays)
    row = res.add(test=name, unit="msgs/s", value=r["msgs_per_s"],
                  p50_us=r["req_lat_us"]["p50"],
                  p99_us=r["req_lat_us"]["p99"], errors=r["errors"],
                  **common)
    if srv.system == "dqd":
        # pages Berkeley DB had to read into its cache, per message
        m1 = dqd_counts(srv.port)
        row["misses_per_msg"] = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    return row


def scenario_enq_interleaved(args, res, durability, systems):
    """The enqueue tests with none waiting, test by test, each system in
    turn on a fresh, empty server of its own, args.enq_rounds times in
    alternating order; the median of each system's runs is its row (all
    runs in "runs").

    This machine's speed (and its disk's sync latency, 2x) moves from one
    minute to the next, and run system after system the rows compared
    figures minutes apart (2026-12-07g-fsync-analysis.md, bench/README.md).
    Fresh servers, one at a time, so that no server's background work (a
    checkpoint, an AOF rewrite) falls in another's run."""
    runs = {}
    tests = ENQ_TESTS if durability == "write" else ENQ_FSYNC
    for i, (name, c, d, b, delays) in enumerate(tests):
        for rnd in range(args.enq_rounds):
            order = systems if (i + rnd) % 2 == 0 else systems[::-1]
            for system in order:
                srv = Server(system, durability, args.workdir, args)
                common = dict(scenario="throughput", durability=durability,
                              backlog=0, system=system, setup=srv.setup)
                try:
                    srv.start()
                    row = enq_test(args, Results(), srv, name, c, d, b,
                                   delays, "i%d%d" % (i, rnd), common)
                finally:
                    srv.dispose(120)
                runs.setdefault((name, system), []).append(row)
                log("  %-40s %-10s %10.0f msgs/s" % (name, system,
                                                     row["value"]))
        for system in systems:
            res.add(**median_run(runs[(name, system)], "value"))


def scenario_throughput(args, res, durability, backlog, system, enq=True):
    srv = Server(system, durability, args.workdir, args)
    common = dict(scenario="throughput", durability=durability,
                  backlog=backlog, system=system, setup=srv.setup)
    empty = None
    try:
        srv.start()
        loaded, load_s = 0, 0.0
        if backlog:
            loaded, load_s = load_backlog(args, srv, backlog)
            res.add(test="backlog load", unit="msgs/s",
                    value=loaded / load_s, **common)
        pss0, rss0, _ = srv.memory()
        # restart: stop (dqd checkpoints), start, first real reply
        stop_s = srv.stop()
        start_s = srv.start()
        res.add(test="restart: stop", unit="s", value=stop_s, **common)
        res.add(test="restart: start to first reply", unit="s",
                value=start_s, **common)
        if loaded:
            # Each system's tests start once the machine has written out
            # what its load left dirty in the page cache, so that no
            # writeback of the load runs under them; the same for every
            # system.  (It took 0.0-0.3 s in the run after it was added:
            # a guard, see bench/README.md.)
            t0 = time.monotonic()
            os.sync()
            log("  sync after the load: %.1f s" % (time.monotonic() - t0))
            res.add(test="sync after the load", unit="s",
                    value=time.monotonic() - t0, **common)
        disk = srv.disk()
        res.add(test="disk", unit="bytes", value=disk, **common)
        if loaded:
            # Berkeley DB's __db.NNN files are its shared-memory regions
            # (cache, locks, log buffer), mapped by every process and
            # counted in PSS: memory, not storage of messages.
            regions = disk_bytes(os.path.join(srv.dir, "data"),
                                 only_regions=True)
            res.add(test="disk per waiting message", unit="bytes/msg",
                    value=(disk - regions) / loaded, **common)
        res.add(test="memory PSS (after load)", unit="bytes", value=pss0,
                **common)
        res.add(test="memory RSS (after load)", unit="bytes", value=rss0,
                **common)
        peak = [pss0, rss0]

        def sample():
            p, r, _ = srv.memory()
            peak[0], peak[1] = max(peak[0], p), max(peak[1], r)
        sample()
        if backlog and system in args.beside:
            # The same system, empty, beside it: each enqueue test runs on
            # both back to back, so "N waiting against none" compares two
            # runs seconds apart rather than minutes (this machine's speed
            # moves by a third from minute to minute; bench/README.md).
            empty = Server(system, durability, args.workdir, args, "-empty")
            empty.start()
        tests = ENQ_TESTS if durability == "write" else ENQ_FSYNC
        for i, (name, c, d, b, delays) in enumerate(tests if enq else []):
            # Which of the two goes first alternates: drift within a pair
            # favours neither.
            pair = [(srv, "throughput"), (empty, "beside")]
            for s, scen in (pair if i % 2 == 0 else pair[::-1]):
                if s is None:
                    continue
                r = enq_test(args, res, s, name, c, d, b, delays,
                             "e%d%s" % (i, scen[0]), dict(common,
                                                          scenario=scen))
                log("  %-40s %10.0f msgs/s%s" % (
                    name, r["value"], "" if s is srv else ", empty beside"))
            sample()
        r = run_deq(args, srv, "dq")
        res.add(test="deq SPOP 100, 50 conns", unit="msgs/s",
                value=r["msgs_per_s"], p50_us=r["req_lat_us"]["p50"],
                p99_us=r["req_lat_us"]["p99"], errors=r["errors"],
                runs=r["runs"], **common)
        log("  %-40s %10.0f msgs/s" % ("deq 100, 50 conns", r["msgs_per_s"]))
        sample()
        # HOOK (issue "reliable delivery"): QRESERVE + QACK, dqd only; runs
        # by itself as soon as dqd knows QRESERVE.
        if system == "dqd" and srv.supports("QRESERVE", "hookprobe", "1",
                                            "1000"):
            r = run_deq(args, srv, "qr", extra=("-x", "qreserve"))
            res.add(test="deq QRESERVE 100 + QACK, 50 conns", unit="msgs/s",
                    value=r["msgs_per_s"], errors=r["errors"],
                    runs=r["runs"], **common)
            sample()
        res.add(test="memory PSS (peak)", unit="bytes", value=peak[0],
                **common)
        res.add(test="memory RSS (peak)", unit="bytes", value=peak[1],
                **common)
        log("  PSS %.1f MiB RSS %.1f MiB disk %.1f MiB restart %.3f s" % (
            peak[0] / 2**20, peak[1] / 2**20, disk / 2**20, start_s))
    finally:
        if empty is not None:
            empty.dispose(120)
        srv.dispose(120)


def scenario_lateness(args, res, system):
    srv = Server(system, "write", args.workdir, args)
    try:
        srv.start()
        modes = []
        if system == "dqd":
            modes.append(("polling SPOP 100 every %g ms" % args.poll_ms,
                          ("-x", "spop")))
            # HOOK (issue "blocking consumers"): BSPOP, once it exists.
            if srv.supports("BSPOP", "hookprobe", "0.01"):
                modes.append(("blocked BSPOP", ("-x", "bspop")))
            else:
                log("  BSPOP not implemented yet: blocked row skipped")
        elif system == "redis":
            modes.append(("polling Lua take 100 every %g ms" % args.poll_ms,
                          ()))
        else:
            modes.append(("blocked reserve-with-timeout + delete", ()))
        for i, (name, extra) in enumerate(modes):
            r = loadgen(args, srv, "lat", duration=args.lat_seconds,
                        queue="lat%d" % i, delays=args.lat_delays,
                        tag="l", extra=("-a", str(args.lat_rate),
                                        "-C", str(args.lat_consumers),
                                        "-i", str(args.poll_ms), "-g", "5")
                        + tuple(extra))
            lat = r["lat"]
            res.add(scenario="lateness", durability="write", backlog=0,
                    system=system, setup=srv.setup, test=name, unit="us",
                    value=lat["p99_us"], p50_us=lat["p50_us"],
                    p99_us=lat["p99_us"], max_us=lat["max_us"],
                    early=lat["early"], missing=lat["missing"],
                    duplicates=lat["duplicates"], delivered=lat["delivered"],
                    total=lat["total"], errors=r["errors"])
            log("  %-40s p50 %d us p99 %d us max %d us early %d missing %d"
                % (name, lat["p50_us"], lat["p99_us"], lat["max_us"],
                   lat["early"], lat["missing"]))
    finally:
        srv.dispose(60)


def ceiling(args, res):
    """The load generator's own ceiling: redis-server without persistence
    answering PING (the cheapest command there is)."""
    d = os.path.join(args.workdir, "redis-ping")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    p = subprocess.Popen([args.redis_server, "--port", str(port), "--bind",
                          "127.0.0.1", "--daemonize", "no", "--save", "",
                          "--appendonly", "no", "--dir", d, "--logfile",
                          os.path.join(d, "log")])
    try:
        for _ in range(400):
            try:
                if resp_cmd(port, "PING")[0]:
                    break
            except OSError:
                time.sleep(0.01)
        args._ping_port = port
        for c, dep in ((50, 1), (50, 16)):
            r = loadgen(args, None, "ping", conns=c, depth=dep,
                        duration=args.seconds)
            res.add(scenario="ceiling", durability="none", backlog=0,
                    system="loadgen vs redis-server PING",
                    setup="redis-server --appendonly no --save ''",
                    test="PING, %d conns, %d pipelined" % (c, dep),
                    unit="reqs/s", value=r["reqs_per_s"])
            log("  loadgen ceiling PING c%d d%d: %.0f/s" % (c, dep,
                                                           r["reqs_per_s"]))
    finally:
        p.terminate()
        p.wait(30)
        shutil.rmtree(d, ignore_errors=True)
    engine_ceiling(args, res)


def engine_ceiling(args, res):
    """What Berkeley DB alone does for SPOP on this machine, in this run:
    bench/takeceil loads due messages into an environment set up as dqd's
    and takes them as a worker does, no network, no protocol.  The dequeue
    rows are read against it (a peer's figure above twice this ceiling is
    beyond what the storage engine does here)."""
    if not args.takeceil or not os.access(args.takeceil, os.X_OK):
        log("  bench/takeceil not built: engine ceiling skipped")
        return
    n = 500000 if args.quick else 1000000
    for procs in (1,) if args.quick else (1, 2):
        d = os.path.join(args.workdir, "takeceil-%d" % procs)
        shutil.rmtree(d, ignore_errors=True)
        r = subprocess.run([args.takeceil, "-d", d, "-n", str(n), "-p",
                            str(procs)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=900)
        shutil.rmtree(d, ignore_errors=True)
        if r.returncode != 0:
            raise RuntimeError("takeceil: %s" % r.stderr.decode())
        v = json.loads(r.stdout)
        res.add(scenario="ceiling", durability="write", backlog=0,
                system="Berkeley DB alone (bench/takeceil)",
                setup="dqd's environment settings, DB_TXN_WRITE_NOSYNC",
                test="take %s due messages as SPOP does, %d process%s, "
                "%d per transaction" % (fmtn(n), procs,
                                        "es" if procs > 1 else "",
                                        v["batch"]),
                unit="msgs/s", value=v["msgs_per_s"])
        log("  engine ceiling, %d procs: %.0f msgs/s" % (procs,
                                                        v["msgs_per_s"]))


def machine_info(args):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=30
                                  ).stdout.decode().strip()
        except Exception as e:
            return "?(%s)" % e
    info = {}
    info["date"] = datetime.datetime.now().astimezone().isoformat(
        timespec="seconds")
    info["cpus"] = os.cpu_count()
    info["cpu model"] = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    with open("/proc/meminfo") as f:
        info["memory"] = "%.1f GiB" % (int(f.readline().split()[1]) / 2**20)
    info["kernel"] = platform.release()
    with open("/proc/loadavg") as f:
        info["load average at start (other work on the machine)"] = \
            " ".join(f.read().split()[:3])
    src = sh("df --output=source %s | tail -1" % args.workdir)
    fs = sh("df --output=fstype %s | tail -1" % args.workdir)
    dev = os.path.basename(src)
    rota = sh("cat /sys/block/%s/queue/rotational 2>/dev/null" % dev)
    model = sh("lsblk -dno MODEL %s 2>/dev/null" % src)
    virt = sh("systemd-detect-virt 2>/dev/null || true")
    info["disk"] = "%s (%s, %s, rotational=%s%s%s)" % (
        args.workdir, src, fs, rota or "?",
        ", model " + model if model else "",
        ", virtual machine: " + virt if virt and virt != "none" else "")
    # fdatasync rate of that disk: the ceiling of one-commit-per-fsync
    t = tempfile.NamedTemporaryFile(dir=args.workdir, delete=False)
    try:
        fd = t.fileno()
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 1.0 and n < 100000:
            os.write(fd, b"x" * 512)
            os.fdatasync(fd)
            n += 1
        info["disk fdatasync/s (512 B appends)"] = round(
            n / (time.monotonic() - t0))
    finally:
        t.close()
        os.unlink(t.name)
    info["dqd"] = sh("%s --version" % args.dqd)
    info["Berkeley DB"] = sh("dpkg-query -W -f '${Version}' libdb5.3")
    info["redis-server"] = sh("%s --version" % args.redis_server)
    info["beanstalkd"] = sh("%s -v" % args.beanstalkd)
    info["gnuplot"] = sh("gnuplot --version")
    info["compiler"] = sh("cc --version | head -1")
    info["loadgen"] = args.loadgen
    return info


# Reports ---------------------------------------------------------------------

def fmt(v, unit):
    if v is None:
        return ""
    if unit == "bytes":
        return "%.1f MiB" % (v / 2**20)
    if unit == "s":
        return "%.3f s" % v
    if unit == "us":
        return "%d us" % v
    if unit == "bytes/msg":
        return "%.0f B" % v
    return "{:,.0f}".format(v)


def dqd_row(res, r):
    for x in res.rows:
        if (x["system"] == "dqd" and x["scenario"] == r["scenario"] and
                x["durability"] == r["durability"] and
                x["backlog"] == r["backlog"] and x["test"] == r["test"]):
            return x
    return None


RESOURCE_ORDER = ["backlog load", "memory PSS (after load)",
                  "memory RSS (after load)", "memory PSS (peak)",
                  "memory RSS (peak)", "disk", "disk per waiting message",
                  "restart: stop", "restart: start to first reply",
                  "sync after the load"]


def ratio(res, r):
    """dqd / peer, for the same test (throughput: higher is better for dqd;
    memory, time and lateness: lower is better, the ratio is printed as is)."""
    d = dqd_row(res, r)
    if d is None or r["system"] == "dqd" or not r["value"] or \
            r["scenario"] == "lateness":
        return None
    return d["value"] / r["value"]


def misses_note(big, zero):
    """What bounds a backlog row: pages read into the cache per message."""
    if "misses_per_msg" not in big or "misses_per_msg" not in zero:
        return ""
    return ("; cache misses per message %.2f, with none waiting %.2f"
            % (big["misses_per_msg"], zero["misses_per_msg"]))


def targets(res, args):
    """Issue 6's targets, checked against this run's numbers."""
    out = []

    def find(**kw):
        return [x for x in res.rows if all(x.get(k) == v
                                            for k, v in kw.items())]

    def engine_note(x, wanted):
        """For a missed dequeue line: where dqd and the target stand
        against what Berkeley DB alone does here (the hardware's say)."""
        eng = [c["value"] for c in find(scenario="ceiling", unit="msgs/s")]
        if not x["test"].startswith("deq") or not eng:
            return ""
        top = max(eng)
        return ("; Berkeley DB alone takes %s/s here (bench/takeceil): "
                "dqd at %.0f%% of it, the target at %.0f%%%s" % (
                    fmt(top, ""), 100 * x["value"] / top, 100 * wanted / top,
                    ", beyond the storage engine on this machine"
                    if wanted > top else ""))

    def add(ok, what):
        out.append(("met" if ok else "MISSED", what))
    tests = [t[0] for t in ENQ_TESTS] + ["deq SPOP 100, 50 conns"]
    for x in find(scenario="throughput", system="dqd"):
        if x["test"] not in tests:
            continue
        for peer in ("redis", "beanstalkd"):
            p = find(scenario="throughput", system=peer, test=x["test"],
                     durability=x["durability"], backlog=x["backlog"])
            if not p or not p[0]["value"]:
                continue
            need = 0.5 if (peer == "redis" and x["durability"] == "write") \
                else 1.0
            r = x["value"] / p[0]["value"]
            add(r >= need, "%s, %s, backlog %s: dqd %s/s vs %s (%s) %s/s "
                "= %.2f, target >= %.1f%s" % (
                    x["test"], x["durability"], fmtn(x["backlog"]),
                    fmt(x["value"], ""), peer, p[0]["setup"],
                    fmt(p[0]["value"], ""), r, need,
                    engine_note(x, need * p[0]["value"]) if r < need
                    else ""))
    # At-least-once against at-least-once: beanstalkd's dequeue already
    # is reserve + delete, so QRESERVE + QACK is the like-for-like pair.
    for x in find(scenario="throughput", system="dqd",
                  test="deq QRESERVE 100 + QACK, 50 conns"):
        p = find(scenario="throughput", system="beanstalkd",
                 test="deq SPOP 100, 50 conns", durability=x["durability"],
                 backlog=x["backlog"])
        if not p or not p[0]["value"]:
            continue
        r = x["value"] / p[0]["value"]
        add(r >= 1.0, "deq at least once, 50 conns, %s, backlog %s: dqd "
            "QRESERVE 100 + QACK %s/s vs beanstalkd (%s) reserve + delete "
            "%s/s = %.2f, target >= 1.0" % (
                x["durability"], fmtn(x["backlog"]), fmt(x["value"], ""),
                p[0]["setup"], fmt(p[0]["value"], ""), r))
    backlogs = sorted({x["backlog"] for x in find(scenario="throughput",
                                                  system="dqd")})
    big = max(backlogs) if backlogs else 0
    if big:
        for x in find(scenario="throughput", system="dqd", backlog=big,
                      durability="write", unit="msgs/s"):
            if x["test"] not in tests:
                continue
            # Against the same test on an empty dqd run right beside it
            # (scenario "beside"), else against the backlog-0 run.
            z = find(scenario="beside", system="dqd", backlog=big,
                     durability="write", test=x["test"])
            how = "an empty dqd run beside it"
            if not z:
                z = find(scenario="throughput", system="dqd", backlog=0,
                         durability="write", test=x["test"])
                how = "the backlog-0 run"
            if z and z[0]["value"]:
                r = x["value"] / z[0]["value"]
                add(r >= 0.8, "%s with %s waiting: %.0f%% of the rate with "
                    "none waiting (%s/s against %s/s, %s), target >= 80%%%s"
                    % (x["test"], fmtn(big), 100 * r, fmt(x["value"], ""),
                       fmt(z[0]["value"], ""), how, misses_note(x, z[0])))
    lim = (CACHE_MB + 64) * 2**20
    for x in find(scenario="throughput", system="dqd",
                  test="memory PSS (peak)"):
        add(x["value"] <= lim, "memory PSS, %s, backlog %s: %.1f MiB, target "
            "<= %d MiB (cache_size_mb + 64)" % (
                x["durability"], fmtn(x["backlog"]), x["value"] / 2**20,
                CACHE_MB + 64))
    for x in find(scenario="throughput", system="dqd",
                  test="disk per waiting message"):
        add(x["value"] <= 2 * (BODY + 48), "disk, backlog %s: %.0f B per "
            "waiting message after a checkpoint, target <= %d B" % (
                fmtn(x["backlog"]), x["value"], 2 * (BODY + 48)))
    for x in find(scenario="throughput", system="dqd",
                  test="restart: start to first reply"):
        add(x["value"] < 2.0, "restart, %s, backlog %s: %.3f s to the first "
            "reply, target < 2 s" % (x["durability"], fmtn(x["backlog"]),
                                     x["value"]))
    for x in find(scenario="lateness", system="dqd"):
        add(x["early"] == 0, "lateness (%s): %d early deliveries, target 0"
            % (x["test"], x["early"]))
        add(x["missing"] == 0, "lateness (%s): %d of %d messages not "
            "delivered, target 0" % (x["test"], x["missing"], x["total"]))
        if "BSPOP" in x["test"]:
            add(x["p99_us"] < 5000 and x["max_us"] < 50000,
                "lateness, blocked: p99 %.1f ms, max %.1f ms, target p99 "
                "< 5 ms, max < 50 ms" % (x["p99_us"] / 1000,
                                         x["max_us"] / 1000))
    if not any("BSPOP" in x["test"] for x in find(scenario="lateness",
                                                   system="dqd")):
        out.append(("not measured", "lateness with blocked consumers: BSPOP "
                    "is not implemented yet (hook in bench.py)"))
    one = find(scenario="throughput", system="dqd", durability="fsync",
               backlog=0, test="enq single, 1 conn")
    many = find(scenario="throughput", system="dqd", durability="fsync",
                backlog=0, test="enq single, 50 conns")
    if one and many and one[0]["value"]:
        r = many[0]["value"] / one[0]["value"]
        what = "fsync group commit: 50 conns %s/s vs 1 conn %s/s = " \
            "%.1fx, target >= 20x" % (fmt(many[0]["value"], ""),
                                      fmt(one[0]["value"], ""), r)
        # The proof for the hardware: 20x one fsync connection against
        # what 50 connections do with no fsync at all, in this same run.
        ceil = find(scenario="throughput", system="dqd", durability="write",
                    backlog=0, test="enq single, 50 conns")
        if r < 20 and ceil and 20 * one[0]["value"] > ceil[0]["value"]:
            peers = []
            for peer in ("redis", "beanstalkd"):
                o = find(scenario="throughput", system=peer, backlog=0,
                         durability="fsync", test="enq single, 1 conn")
                m = find(scenario="throughput", system=peer, backlog=0,
                         durability="fsync", test="enq single, 50 conns")
                if o and m and o[0]["value"]:
                    peers.append("%s %.1fx" % (peer, m[0]["value"] /
                                               o[0]["value"]))
            out.append(("beyond hardware", what + "; 20x would be %s/s, "
                        "more than dqd's %s/s with 50 conns and no fsync at "
                        "all (durability write): at most %.1fx is possible "
                        "here. Same ratio for the peers: %s" % (
                            fmt(20 * one[0]["value"], ""),
                            fmt(ceil[0]["value"], ""),
                            ceil[0]["value"] / one[0]["value"],
                            ", ".join(peers) or "not measured")))
        else:
            add(r >= 20, what)
    return out


def beside_table(res):
    """Each backlog's enqueue rows against the same system, empty, run
    right before or after on the same machine (scenario "beside")."""
    pairs = []
    for z in res.rows:
        if z["scenario"] != "beside":
            continue
        for x in res.rows:
            if (x["scenario"] == "throughput" and x["system"] == z["system"]
                    and x["backlog"] == z["backlog"] and
                    x["durability"] == z["durability"] and
                    x["test"] == z["test"]):
                pairs.append((x, z))
    if not pairs:
        return []
    md = ["## Enqueue with messages waiting against an empty server "
          "beside it\n",
          "Each test ran on the loaded server and, right before or after "
          "it (alternately), on an empty one of the same system started "
          "beside it: the two runs are seconds apart, where the backlog-0 "
          "tables above ran minutes earlier.\n",
          "| test | system | waiting | rate | empty, beside | waiting / "
          "empty |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for x, z in pairs:
        md.append("| %s | %s | %s | %s | %s | %.0f%% |" % (
            x["test"], x["system"], fmtn(x["backlog"]), fmt(x["value"], ""),
            fmt(z["value"], ""), 100 * x["value"] / max(1, z["value"])))
    md.append("")
    return md


def fmtn(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def misses_table(res):
    """dqd's cache misses per enqueued message, by test and backlog."""
    rows = [r for r in res.rows if "misses_per_msg" in r and
            r["scenario"] == "throughput"]
    if not rows:
        return []
    cols = sorted({(r["durability"], r["backlog"]) for r in rows},
                  key=lambda k: (k[0] != "write", k[1]))
    md = ["## dqd: cache misses per enqueued message\n",
          "Pages Berkeley DB read into its cache (`INFO` `cache_misses`), "
          "divided by the messages the test enqueued: about 1 means every "
          "insert went to a page the %d MiB cache no longer held.\n"
          % CACHE_MB,
          "| test | " + " | ".join("%s, %s waiting" % (d, fmtn(b))
                                   for d, b in cols) + " |",
          "| --- |" + " ---: |" * len(cols)]
    for t in dict.fromkeys(r["test"] for r in rows):
        vals = []
        for d, b in cols:
            x = [r for r in rows if r["test"] == t and r["durability"] == d
                 and r["backlog"] == b]
            vals.append("%.2f" % x[0]["misses_per_msg"] if x else "")
        md.append("| %s | %s |" % (t, " | ".join(vals)))
    return md + [""]


def write_reports(args, res, info, stem):
    os.makedirs(args.results, exist_ok=True)
    base = os.path.join(args.results, stem)
    cols = ["scenario", "durability", "backlog", "test", "system", "setup",
            "value", "unit", "dqd_over_this", "p50_us", "p99_us", "max_us",
            "early", "missing", "errors", "misses_per_msg", "runs"]
    import csv
    with open(base + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        for k, v in info.items():
            w.writerow(["# " + k, v])
        w.writerow(cols)
        for r in res.rows:
            rr = ratio(res, r)
            w.writerow([r.get(c, "") if c != "dqd_over_this" else
                        ("%.3f" % rr if rr is not None else "")
                        for c in cols])
    with open(base + ".json", "w") as f:
        json.dump({"machine": info, "args": {k: v for k, v in
                                             vars(args).items()
                                             if not k.startswith("_")},
                   "rows": res.rows}, f, indent=1)
    md = []
    md.append("# dqd benchmark, %s (%s)\n" % (info["date"], args.kind))
    md.append("Produced by `bench/bench.py%s`; how to read it: "
              "`bench/README.md`.\n" % (" --quick" if args.quick else ""))
    md.append("## Machine and versions\n")
    md.append("| | |\n| --- | --- |")
    for k, v in info.items():
        md.append("| %s | %s |" % (k, str(v).replace("|", "/")))
    md.append("\nMessage bodies: %d bytes. Waiting messages: due uniformly "
              "1 h to 25 h out. dqd: %d workers, cache_size_mb = %d. Every "
              "server on 127.0.0.1 with its own data directory, started "
              "by the script.\n" % (BODY, args.dqd_workers, CACHE_MB))
    md.append("Setups (matching durability):\n")
    for dur, s in SETUPS.items():
        for sysname, txt in s.items():
            md.append("- `%s` run: **%s**: %s" % (dur, sysname, txt))
    md.append("")
    ceil = [r for r in res.rows if r["scenario"] == "ceiling"]
    if ceil:
        md.append("## Ceilings: the load generator and the storage engine\n")
        md.append("The load generator against redis-server answering PING "
                  "(the cheapest command there is), and Berkeley DB alone "
                  "taking due messages as a dqd worker does (no network, "
                  "no protocol): the most any dequeue row of dqd can show "
                  "on this machine.\n")
        md.append("| system | test | per second |\n| --- | --- | ---: |")
        for r in ceil:
            md.append("| %s | %s | %s %s |" % (r["system"], r["test"],
                                              fmt(r["value"], ""),
                                              r["unit"]))
        md.append("")
    for dur in ("write", "fsync"):
        rows = [r for r in res.rows if r["scenario"] == "throughput" and
                r["durability"] == dur]
        if not rows:
            continue
        md.append("## Throughput and resources, durability `%s`\n" % dur)
        md.append("ratio = dqd / this system (throughput: > 1 means dqd is "
                  "faster; memory, disk, time: < 1 means dqd uses less).\n")
        for bl in sorted({r["backlog"] for r in rows}):
            md.append("### %s messages waiting\n" % fmtn(bl))
            md.append("| test | system | value | unit | dqd / this | "
                      "p50 | p99 |")
            md.append("| --- | --- | ---: | --- | ---: | ---: | ---: |")
            seen = []
            for r in rows:
                if r["backlog"] == bl and r["test"] not in seen:
                    seen.append(r["test"])
            seen.sort(key=lambda t: (0 if t.startswith("enq") else
                                     1 if t.startswith("deq") else 2,
                                     RESOURCE_ORDER.index(t)
                                     if t in RESOURCE_ORDER else 0))
            for t in seen:
                for r in rows:
                    if r["backlog"] != bl or r["test"] != t:
                        continue
                    rr = ratio(res, r)
                    md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                        t, r["system"], fmt(r["value"], r["unit"]),
                        r["unit"] if r["unit"] not in ("bytes", "s") else "",
                        "%.2f" % rr if rr is not None else "",
                        fmt(r.get("p50_us"), "us") if r.get("p50_us")
                        is not None else "",
                        fmt(r.get("p99_us"), "us") if r.get("p99_us")
                        is not None else ""))
            md.append("")
    md += beside_table(res)
    md += misses_table(res)
    lat = [r for r in res.rows if r["scenario"] == "lateness"]
    if lat:
        md.append("## Delivery lateness (delivered - due), durability "
                  "`write`\n")
        md.append("%d messages/s for %g s, delays %s ms, %d consumers; "
                  "beanstalkd delays in whole seconds (its resolution).\n"
                  % (args.lat_rate, args.lat_seconds, args.lat_delays,
                     args.lat_consumers))
        md.append("| system | consumers | p50 | p99 | max | early | "
                  "missing | delivered |")
        md.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in lat:
            md.append("| %s | %s | %.2f ms | %.2f ms | %.2f ms | %d | %d | "
                      "%d |" % (r["system"], r["test"], r["p50_us"] / 1000,
                                r["p99_us"] / 1000, r["max_us"] / 1000,
                                r["early"], r["missing"], r["delivered"]))
        md.append("")
    md.append("## Targets of issue 6\n")
    for st, what in targets(res, args):
        md.append("- **%s**: %s" % (st, what))
    md.append("")
    plot = make_plot(args, res, base)
    if plot:
        md.append("## Plot\n\n![throughput and memory against backlog](%s)\n"
                  % os.path.basename(plot))
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    return base + ".md"


def make_plot(args, res, base):
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found: no plot")
        return None
    rows = [r for r in res.rows if r["scenario"] == "throughput" and
            r["durability"] == "write"]
    backlogs = sorted({r["backlog"] for r in rows})
    if not backlogs:
        return None
    panels = [("enq single, 50 conns", "enqueue, single, 50 conns (msgs/s)",
               1),
              ("enq batch 100, 50 conns", "enqueue, batches of 100, 50 conns "
               "(messages/s)", 1),
              ("deq SPOP 100, 50 conns", "dequeue of due messages, 100 per "
               "call, 50 conns (msgs/s)", 1),
              ("memory PSS (after load)", "memory of all processes after "
               "the backlog load, PSS (MiB)", 2**20)]
    dat = base + ".plot.dat"
    with open(dat, "w") as f:
        for i, (test, _, div) in enumerate(panels):
            f.write("# %s\n" % test)
            f.write("backlog dqd redis beanstalkd\n")
            for k, bl in enumerate(backlogs):
                vals = []
                for s in SYSTEMS:
                    v = [r["value"] for r in rows if r["backlog"] == bl and
                         r["system"] == s and r["test"] == test]
                    vals.append("%.3f" % (v[0] / div) if v else "NaN")
                f.write('%d "%s" %s\n' % (k, fmtn(bl), " ".join(vals)))
            f.write("\n\n")
    png = base + ".png"
    script = ['set terminal pngcairo noenhanced size 1400,1000 font ",10"',
              'set output "%s"' % png,
              'set multiplot layout 2,2 title "dqd vs Redis (AOF everysec) '
              'vs beanstalkd (binlog -f1000), durability write: against '
              'messages waiting"',
              "set style data linespoints", "set key top right",
              "set grid", "set xlabel 'messages waiting'",
              "set xrange [-0.3:%f]" % (len(backlogs) - 0.7),
              "set yrange [0:*]", "set format y '%.0s%c'"]
    for i, (test, title, div) in enumerate(panels):
        script.append("set title '%s'" % title)
        if div != 1:
            script.append("set logscale y")
            script.append("set yrange [*:*]")
            script.append("set format y '%g'")
        script.append(
            "plot '%s' index %d using 1:3:xtic(2) title 'dqd' lw 2, "
            "'' index %d using 1:4 title 'redis' lw 2, "
            "'' index %d using 1:5 title 'beanstalkd' lw 2"
            % (dat, i, i, i))
    script.append("unset multiplot")
    r = subprocess.run([gp], input="\n".join(script).encode(),
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr.decode())
        return None
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="bench-quick: backlogs 0 and 1M, shorter tests")
    ap.add_argument("--dqd", default=os.environ.get("DQD", "dqd"))
    ap.add_argument("--loadgen", default=os.environ.get(
        "LOADGEN", os.path.join(HERE, "loadgen")))
    ap.add_argument("--takeceil", default=os.environ.get(
        "TAKECEIL", os.path.join(HERE, "takeceil")))
    ap.add_argument("--redis-server", default=os.environ.get(
        "REDIS_SERVER", "redis-server"))
    ap.add_argument("--beanstalkd", default=os.environ.get(
        "BEANSTALKD", "beanstalkd"))
    ap.add_argument("--results", default=os.environ.get(
        "BENCH_RESULTS", os.path.join(HERE, "results")))
    ap.add_argument("--workdir", default=None,
                    help="where the servers' data directories go "
                    "(default: a new directory under $TMPDIR or /var/tmp)")
    ap.add_argument("--scenarios", default="ceiling,1,2,3,4",
                    help="comma list of ceiling,1,2,3,4 (1 and 2 run "
                    "together: enqueue and dequeue at backlog 0; 3 adds "
                    "the backlogs)")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--backlogs", default=None,
                    help="comma list of waiting-message counts for scenario "
                    "3 (default 1000000,10000000; --quick 1000000)")
    ap.add_argument("--durabilities", default="write,fsync")
    ap.add_argument("--seconds", type=float, default=None,
                    help="length of each throughput test")
    ap.add_argument("--deq-seconds", type=float, default=None)
    ap.add_argument("--deq-max", type=int, default=5000000)
    ap.add_argument("--deq-runs", type=int, default=None,
                    help="drains per dequeue row, the median is reported "
                    "(default 3; --quick 1)")
    ap.add_argument("--lat-seconds", type=float, default=None)
    ap.add_argument("--lat-rate", type=int, default=2000)
    ap.add_argument("--lat-delays", default="1000:3000")
    ap.add_argument("--lat-consumers", type=int, default=4)
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--beside", default=None,
                    help="comma list of systems whose backlog enqueue tests "
                    "also run on an empty server beside (default: all; "
                    "--quick: dqd)")
    ap.add_argument("--enq-rounds", type=int, default=None,
                    help="enqueue tests with none waiting: runs per "
                    "system, test by test in turn, the median reported "
                    "(default 3; --quick 1)")
    ap.add_argument("--dqd-workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name", default=None, help="results file stem")
    args = ap.parse_args()
    q = args.quick
    args.kind = "bench-quick" if q else "bench"
    if args.seconds is None:
        args.seconds = 2.0 if q else 3.0
    if args.enq_rounds is None:
        args.enq_rounds = 1 if q else 3
    if args.deq_runs is None:
        args.deq_runs = 1 if q else 3
    if args.deq_seconds is None:
        args.deq_seconds = 1.5 if q else 2.0
    if args.lat_seconds is None:
        args.lat_seconds = 4 if q else 10
    if args.beside is None:
        args.beside = "dqd" if q else ",".join(SYSTEMS)
    args.beside = [x for x in args.beside.split(",") if x]
    bad = [x for x in args.beside if x not in SYSTEMS]
    if bad:
        sys.exit("bench: --beside: unknown system %s (one of %s)"
                 % (bad[0], ", ".join(SYSTEMS)))
    if args.enq_rounds < 1:
        sys.exit("bench: --enq-rounds must be at least 1")
    if args.backlogs is None:
        args.backlogs = "1000000" if q else "1000000,10000000"
    args.dqd = shutil.which(args.dqd) or args.dqd
    for exe in (args.dqd, args.loadgen):
        if not os.access(exe, os.X_OK):
            sys.exit("bench: %s is not an executable (set DQD / LOADGEN)"
                     % exe)
    for exe in (args.redis_server, args.beanstalkd):
        if not shutil.which(exe):
            sys.exit("bench: %s not found (apt-get install redis-server "
                     "beanstalkd)" % exe)
    own_workdir = args.workdir is None
    if own_workdir:
        base = os.environ.get("TMPDIR", "/var/tmp")
        args.workdir = tempfile.mkdtemp(prefix="dqd-bench-", dir=base)
    os.makedirs(args.workdir, exist_ok=True)
    scen = set(args.scenarios.split(","))
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    backlogs = []
    if scen & {"1", "2"}:
        backlogs.append(0)
    if "3" in scen:
        backlogs += [int(x) for x in args.backlogs.split(",") if x]
    durs = args.durabilities.split(",")
    res = Results()
    t0 = time.monotonic()
    stem = args.name or "%s-%s" % (datetime.date.today().isoformat(),
                                    "quick" if q else "full")
    info = machine_info(args)
    log("bench: %s, work directory %s" % (args.kind, args.workdir))
    try:
        if "ceiling" in scen:
            ceiling(args, res)
        # Backlog by backlog, both durabilities at 0 first: the fsync rows
        # are not run on a machine still reclaiming the 10 M runs' memory.
        for bl, dur in [(b, d) for b in backlogs for d in durs]:
            if dur != "write" and (bl != 0 or not scen & {"1", "2"}):
                continue
            # With none waiting the enqueue rows run test by test, the
            # systems in turn (scenario_enq_interleaved); with a backlog
            # each system runs them on its loaded server.
            apart = bl == 0
            for s in systems:
                log("%s, durability %s, %s waiting" % (s, dur, fmtn(bl)))
                scenario_throughput(args, res, dur, bl, s, enq=not apart)
            if apart:
                log("enqueue, durability %s, systems in turn" % dur)
                scenario_enq_interleaved(args, res, dur, systems)
        if "4" in scen:
            for s in systems:
                log("%s, lateness" % s)
                scenario_lateness(args, res, s)
    finally:
        info["bench wall time"] = "%.0f s" % (time.monotonic() - t0)
        with open("/proc/loadavg") as f:
            info["load average at end"] = " ".join(f.read().split()[:3])
        if res.rows:
            md = write_reports(args, res, info, stem)
            log("results: %s (and .csv, .json, .png)" % md)
            for st, what in targets(res, args):
                print("%-12s %s" % (st, what))
        if own_workdir:
            shutil.rmtree(args.workdir, ignore_errors=True)
    log("bench: done in %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
