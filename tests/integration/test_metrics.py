"""The Prometheus endpoint: /metrics is valid (promtool check metrics),
its counters move as commands run, and a slow scraper never stalls the
master."""
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import dqtest


def scrape(port, path="/metrics", timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def values(text):
    """{'name{labels}': float} of the samples in an exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def queue_label(line):
    """The queue label of a sample line, with the exposition format's
    escapes (\\\\, \\", \\n) undone."""
    i = line.index('{queue="') + len('{queue="')
    out = []
    while line[i] != '"':
        if line[i] == "\\":
            i += 1
            out.append({"\\": "\\", '"': '"', "n": "\n"}[line[i]])
        else:
            out.append(line[i])
        i += 1
    return "".join(out)


def unlabel(v):
    """The queue name (bytes) a label value stands for: dqd writes a
    backslash as \\\\ and other bytes that are not printable UTF-8 as
    \\xHH."""
    out, i = bytearray(), 0
    while i < len(v):
        if v[i] != "\\":
            out += v[i].encode()
            i += 1
        elif v[i + 1] == "\\":
            out += b"\\"
            i += 2
        else:
            assert v[i + 1] == "x", v
            out.append(int(v[i + 2:i + 4], 16))
            i += 4
    return bytes(out)


class MetricsTest(dqtest.TestCase):

    def start(self, **kw):
        self.mport = dqtest.free_port()
        self.srv = self.server(
            workers=2, max_deliveries=1,
            metrics={"bind": "127.0.0.1", "port": self.mport}, **kw)
        return self.srv

    def test_promtool_accepts_the_output(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian's prometheus "
                             "package) is needed by this test")
        srv = self.start()
        r = srv.client()
        r.execute_command("QADD", 'we"ird\\q\nx', "a", 0)
        time.sleep(2.5)         # the housekeeper publishes every 2 s
        status, ctype, text = scrape(self.mport)
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"))
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print("promtool check metrics: ok, %d lines" % len(text.splitlines()))

    def test_python_client_parses_every_family(self):
        """Prometheus' own Python parser (Debian's
        python3-prometheus-client) reads the output; every family SPEC 6
        names is there with HELP and TYPE; histogram buckets rise to +Inf
        and match _count."""
        try:
            from prometheus_client.parser import \
                text_string_to_metric_families
        except ImportError:
            self.fail("python3-prometheus-client is needed by this test")
        srv = self.start()
        r = srv.client()
        r.execute_command("QADD", "j", "a", 0, "b", 0)
        got = r.execute_command("QRESERVE", "j", 2, 60000)
        r.execute_command("QACK", "j", got[0][0])
        r.execute_command("SADD", 'q"\\', "x", 0)
        r.execute_command("SPOP", 'q"\\')
        time.sleep(2.5)         # the housekeeper publishes every 2 s
        text = scrape(self.mport)[2]
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        # milliseconds, printed as such (not 1796643503.9430001)
        self.assertRegex(text, r"\ndqd_start_time_seconds \d{10}(\.\d{1,3})?\n")
        spec = {    # SPEC 6: what the endpoint must show
            "commands by name": "dqd_commands",
            "enqueued": "dqd_messages_enqueued",
            "delivered": "dqd_messages_delivered",
            "acked": "dqd_messages_acked",
            "redelivered": "dqd_messages_redelivered",
            "connections": "dqd_connections",
            "connected": "dqd_connected_clients",
            "errors": "dqd_errors",
            "queue depths": "dqd_queue_messages",
            "worker restarts": "dqd_worker_restarts",
            "bdb cache": "dqd_bdb_cache_hit_ratio",
            "bdb cache bytes": "dqd_bdb_cache_bytes",
            "bdb locks": "dqd_bdb_lock_waits",
            "bdb log": "dqd_bdb_log_bytes",
            "latency histograms": "dqd_command_duration_seconds"}
        for what, name in spec.items():
            self.assertIn(name, fams, what)
        self.assertEqual(fams["dqd_command_duration_seconds"].type,
                         "histogram")
        self.assertEqual(fams["dqd_commands"].type, "counter")
        for line in text.splitlines():
            if line and not line.startswith("#"):
                base = line.split("{")[0].split(" ")[0]
                self.assertTrue(
                    "# TYPE %s " % base in text or any(
                        "# TYPE %s " % base[:-len(x)] in text
                        for x in ("_bucket", "_sum", "_count")
                        if base.endswith(x)), line)
        for f in fams.values():
            self.assertTrue(f.documentation, f.name)
            if f.type != "histogram":
                continue
            series = {}
            for s in f.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items()
                                   if k != "le"))
                series.setdefault(key, {"b": [], "count": None})
                if s.name.endswith("_bucket"):
                    series[key]["b"].append((float(s.labels["le"]),
                                             s.value))
                elif s.name.endswith("_count"):
                    series[key]["count"] = s.value
            self.assertTrue(series or f.name ==
                            "dqd_command_duration_seconds", f.name)
            for key, v in series.items():
                les = [le for le, _ in v["b"]]
                counts = [n for _, n in v["b"]]
                self.assertEqual(les, sorted(les), (f.name, key))
                self.assertEqual(counts, sorted(counts), (f.name, key))
                self.assertEqual(les[-1], float("inf"), (f.name, key))
                self.assertEqual(counts[-1], v["count"], (f.name, key))
        depth = {s.labels["queue"]: s.value
                 for s in fams["dqd_queue_messages"].samples}
        self.assertEqual(depth.get("j"), 1, depth)
        cmds = {s.labels["command"]: s.value
                for s in fams["dqd_commands"].samples}
        self.assertEqual(cmds["qack"], 1)

    def test_queue_labels_one_to_one(self):
        """Every queue name gives its own queue label, and the name can be
        read back from it: "dup\\x01" and "dup\\x02" were both "dup?", a
        duplicate series that Prometheus rejects, and UTF-8 was mangled."""
        names = [b"dup\x01", b"dup\x02", b"dup?", "caf\u00e9".encode(),
                 "\u65e5\u672c \U0001f600".encode(), b"a\\x01", b"a\\\\",
                 b"a\\", b"bad\xff\xfe", b"cut\xc3", b"\xc3\xa9\xc3",
                 b"sur\xed\xa0\x80", b"over\xc0\xaf", b"nl\nx",
                 b"tab\tx", b'q"t', b"del\x7f", b"\\x41", b"A",
                 b"nul\x00a", b"nul\x00b"]
        # past 120 bytes a name is cut and the hash of the whole follows
        long_a, long_b = b"L" * 200 + b"a", b"L" * 200 + b"b"
        srv = self.start()
        r = srv.client()
        for n in names + [long_a, long_b]:
            r.execute_command("SADD", n, "m", 0)
        time.sleep(2.5)         # the housekeeper publishes every 2 s
        text = scrape(self.mport)[2]
        p = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for metric in ("dqd_queue_messages", "dqd_queue_reserved"):
            got = [queue_label(l) for l in text.splitlines()
                   if l.startswith(metric + "{")]
            self.assertEqual(len(got), len(set(got)), got)
            longs = [v for v in got if v.startswith("L" * 120)]
            self.assertEqual(len(longs), 2, got)
            for v in longs:
                self.assertRegex(v, "^L{120}\\.\\.\\.#[0-9a-f]{8}$")
            self.assertEqual(sorted(unlabel(v) for v in got
                                    if v not in longs), sorted(names))
        lines = text.splitlines()
        # valid UTF-8 as it is; other bytes as \xHH, the backslash escaped
        # once more by the exposition format
        for want in ('{queue="caf\u00e9"}', '{queue="dup\\\\x01"}',
                     '{queue="a\\\\\\\\x01"}', '{queue="bad\\\\xff\\\\xfe"}',
                     '{queue="q\\"t"}', '{queue="nl\\\\x0ax"}'):
            self.assertTrue(any(want in l for l in lines), want)

    def test_counters_move(self):
        srv = self.start()
        r = srv.client()
        before = values(scrape(self.mport)[2])
        for _ in range(5):
            r.execute_command("SADD", "q", "x", 0)
        r.execute_command("SPOP", "q", 3)
        ids = r.execute_command("QADD", "j", "a", 0, "b", 0)
        got = r.execute_command("QRESERVE", "j", 2, 200)
        r.execute_command("QACK", "j", got[0][0])
        time.sleep(0.6)          # b's lease runs out: dead letter (max 1)
        r.execute_command("SPOP", "j")
        with self.assertRaises(Exception):
            r.execute_command("NOSUCH")
        time.sleep(2.5)
        after = values(scrape(self.mport)[2])

        def moved(name):
            return after.get(name, 0) - before.get(name, 0)

        self.assertEqual(moved('dqd_commands_total{command="sadd"}'), 5)
        self.assertEqual(moved('dqd_commands_total{command="spop"}'), 2)
        self.assertEqual(moved("dqd_messages_enqueued_total"), 7)
        self.assertEqual(moved("dqd_messages_delivered_total"), 5)
        self.assertEqual(moved("dqd_messages_acked_total"), 1)
        self.assertEqual(moved("dqd_messages_dead_lettered_total"), 1)
        self.assertGreaterEqual(moved("dqd_errors_total"), 1)
        self.assertEqual(moved("dqd_delivery_lateness_seconds_count"), 5)
        # a histogram per command that ran, consistent with the counters
        self.assertEqual(moved(
            'dqd_command_duration_seconds_count{command="sadd"}'), 5)
        self.assertEqual(moved(
            'dqd_command_duration_seconds_bucket{command="spop",le="+Inf"}'),
            2)
        self.assertGreater(
            after['dqd_command_duration_seconds_sum{command="qreserve"}'], 0)
        for name in ("sadd", "spop", "qadd", "qreserve", "qack"):
            self.assertEqual(
                after['dqd_command_duration_seconds_count{command="%s"}'
                      % name],
                after['dqd_commands_total{command="%s"}' % name], name)
        self.assertNotIn('dqd_command_duration_seconds_count{command="qpeek"}',
                         after, "a command never run has no histogram")
        self.assertEqual(after['dqd_queue_messages{queue="q"}'], 2)
        self.assertEqual(after['dqd_queue_messages{queue="j:dead"}'], 1)
        self.assertEqual(after["dqd_workers"], 2)
        self.assertGreater(after["dqd_bdb_cache_bytes"], 0)
        self.assertGreaterEqual(after["dqd_bdb_cache_misses_total"], 0)
        self.assertEqual(moved("dqd_log_syncs_total"), 0)   # "write"
        # nothing here is due more than a bucket ahead and near yet
        self.assertIn("dqd_wheel_moves_total", after)
        self.assertEqual(moved("dqd_wheel_moves_total"), 0)
        self.assertEqual(len(ids), 2)

    def test_blocked_clients_gauge(self):
        """dqd_blocked_clients follows blocked clients that disconnect."""
        self.start()
        socks = [socket.create_connection(("127.0.0.1", self.srv.port))
                 for _ in range(3)]
        for s in socks:
            s.sendall(dqtest.resp_cmd("BSPOP", "x", 0))

        def gauge(want):
            deadline = time.monotonic() + 2
            while True:
                v = values(scrape(self.mport)[2])["dqd_blocked_clients"]
                if v == want or time.monotonic() >= deadline:
                    return v
                time.sleep(0.02)

        self.assertEqual(gauge(3), 3)
        for s in socks:
            s.close()
        self.assertEqual(gauge(0), 0)

    def test_worker_restart_counted(self):
        srv = self.start()
        before = values(scrape(self.mport)[2])
        kids = srv.worker_pids()
        worker = int(srv.client().info("server")["worker_pid"])
        self.assertIn(worker, kids)
        import os
        import signal
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = values(scrape(self.mport)[2])
            if after["dqd_worker_restarts_total"] + \
                    after["dqd_pool_restarts_total"] > \
                    before["dqd_worker_restarts_total"] + \
                    before["dqd_pool_restarts_total"]:
                break
            time.sleep(0.1)
        else:
            self.fail("the dead worker was not counted")

    def test_bad_paths_and_slow_scrapers(self):
        srv = self.start()
        with self.assertRaises(urllib.error.HTTPError) as e:
            scrape(self.mport, "/nope")
        self.assertEqual(e.exception.code, 404)
        # another method: 405 with the Allow header HTTP requires
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                s = socket.create_connection(("127.0.0.1", self.mport))
                s.sendall(b"%s /metrics HTTP/1.0\r\n\r\n" % method.encode())
                head = dqtest.read_raw(s, timeout=3).split(b"\r\n\r\n")[0]
                s.close()
                lines = head.split(b"\r\n")
                self.assertEqual(lines[0],
                                 b"HTTP/1.0 405 Method Not Allowed", head)
                self.assertIn(b"Allow: GET, HEAD", lines[1:], head)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics"
                                     % self.mport, data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)
        self.assertEqual(e.exception.headers.get("Allow"), "GET, HEAD")
        # HEAD, which every HTTP server must support (RFC 9110 9.1): the
        # status and headers of GET, and no body (it was a 405 with one)
        for path, status in ((b"/metrics", b"200 OK"),
                             (b"/nope", b"404 Not Found")):
            with self.subTest(head=path):
                s = socket.create_connection(("127.0.0.1", self.mport))
                s.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
                got = dqtest.read_raw(s, timeout=3)
                s.close()
                head, _, body = got.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                self.assertEqual(lines[0], b"HTTP/1.0 " + status, got)
                self.assertEqual(body, b"", got)
                length = [int(l.split(b":")[1]) for l in lines
                          if l.lower().startswith(b"content-length:")]
                self.assertEqual(len(length), 1, got)
                self.assertGreater(length[0], 0 if status[:3] == b"404"
                                   else 1000)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics"
                                     % self.mport, method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as resp:
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), b"")
        # a request longer than 4095 bytes gets a status, not a reset
        s = socket.create_connection(("127.0.0.1", self.mport))
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 5000 +
                  b"\r\n\r\n")
        got = dqtest.read_raw(s, timeout=3)
        s.close()
        self.assertTrue(got.startswith(
            b"HTTP/1.0 431 Request Header Fields Too Large\r\n"), got[:200])
        # just under the limit is served
        s = socket.create_connection(("127.0.0.1", self.mport))
        req = b"GET /metrics HTTP/1.1\r\nX-Long: "
        req += b"a" * (4095 - len(req) - 4) + b"\r\n\r\n"
        self.assertEqual(len(req), 4095)
        s.sendall(req)
        got = dqtest.read_raw(s, timeout=3)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.0 200 OK\r\n"), got[:200])
        # Scrapers that connect and say nothing: the master goes on
        # serving others and supervising.
        idle = [socket.create_connection(("127.0.0.1", self.mport))
                for _ in range(3)]
        half = socket.create_connection(("127.0.0.1", self.mport))
        half.sendall(b"GET /metr")
        t0 = time.monotonic()
        status, _, text = scrape(self.mport)
        self.assertEqual(status, 200)
        self.assertIn("dqd_up 1", text)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertTrue(srv.client().ping())
        for s in idle + [half]:
            s.close()

    def test_idle_connections_do_not_lock_out_scrapers(self):
        """More silent connections than the master serves at once (8):
        each new connection took a free slot or was closed unanswered,
        so a few idle sockets kept Prometheus out for 5 s at a time,
        again and again.  A connection still waiting for its request now
        gives its slot to a newcomer."""
        self.start()
        idle = []
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", self.mport))
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        time.sleep(0.3)     # the master has accepted them all
        t0 = time.monotonic()
        for _ in range(3):
            try:
                status, _, text = scrape(self.mport)
            except OSError as e:
                self.fail("scrape refused behind idle connections: %r" % e)
            self.assertEqual(status, 200)
            self.assertIn("dqd_up 1", text)
        self.assertLess(time.monotonic() - t0, 2.0)
        for s in idle:
            s.close()

    def test_disabled_by_default(self):
        srv = self.server(workers=1)
        self.assertTrue(srv.client().ping())
        self.assertNotIn("metrics on", srv.logs())


if __name__ == "__main__":
    dqtest.main()
