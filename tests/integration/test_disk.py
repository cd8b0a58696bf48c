"""Disk stays bounded (SPEC 6): a drained or deleted queue gives its space
back (compaction after checkpoints), and old log files go."""
import glob
import os
import time

import dqtest


def fill(r, queue, n, delay=0, batch=500):
    body = "x" * 100
    p = r.pipeline(transaction=False)
    for i in range(0, n, batch):
        args = []
        for _ in range(min(batch, n - i)):
            args += [body, delay]
        p.execute_command("SADD", queue, *args)
    p.execute()


def file_bytes(srv, name):
    return os.path.getsize(os.path.join(srv.data_dir, name))


def wait_below(srv, name, limit, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        size = file_bytes(srv, name)
        if size < limit:
            return size
        time.sleep(0.25)
    raise AssertionError("%s still %d bytes after %d s (limit %d)\n%s"
                         % (name, file_bytes(srv, name), timeout, limit,
                            srv.logs()))


class DiskTest(dqtest.TestCase):

    def test_drained_queue_gives_space_back(self):
        srv = self.server(workers=2, checkpoint_interval_s=1)
        r = srv.client()
        fill(r, "q", 100000)
        time.sleep(1.5)       # a checkpoint writes the pages out
        full = file_bytes(srv, "msgs.db")
        self.assertGreater(full, 8 * 1024 * 1024)
        taken = 0
        while True:
            got = r.execute_command("SPOP", "q", 5000)
            if not got:
                break
            taken += len(got)
        self.assertEqual(taken, 100000)
        small = wait_below(srv, "msgs.db", full // 10)
        print("msgs.db: %d bytes full, %d drained" % (full, small))
        # and the queue works as before
        r.execute_command("SADD", "q", "again", 0)
        self.assertEqual(r.execute_command("SPOP", "q"), b"again")

    def test_deleted_queue_gives_space_back(self):
        srv = self.server(workers=1, checkpoint_interval_s=1)
        r = srv.client()
        fill(r, "big", 100000, delay=3600000)
        fill(r, "keep", 1000, delay=3600000)
        time.sleep(1.5)
        full = file_bytes(srv, "msgs.db")
        self.assertEqual(r.delete("big"), 1)
        small = wait_below(srv, "msgs.db", full // 4)
        print("msgs.db: %d bytes with the queue, %d after DEL" % (full, small))
        self.assertEqual(r.scard("keep"), 1000)

    def test_old_log_files_removed(self):
        srv = self.server(workers=1, checkpoint_interval_s=1)
        r = srv.client()
        # Several log files' worth of writes (32 MiB each).
        for _ in range(3):
            fill(r, "q", 100000)
            while r.execute_command("SPOP", "q", 10000):
                pass
        time.sleep(2.5)
        logs = glob.glob(os.path.join(srv.data_dir, "log.*"))
        print("log files after checkpoints: %d" % len(logs))
        self.assertLessEqual(len(logs), 2, sorted(logs))


if __name__ == "__main__":
    dqtest.main()
