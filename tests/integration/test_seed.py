#!/usr/bin/env python3
"""The walk-through of the original delayedqueue README, verbatim, with
redis-cli: three delayed messages, consumed as their delays run out."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dqtest  # noqa: E402


class SeedReadme(dqtest.TestCase):
    def test_readme_walkthrough(self):
        srv = self.server()
        t0 = time.monotonic()
        # 5. send delayed messages
        self.assertEqual(srv.cli("sadd", "my_queue", "data_delays_10_seconds",
                                 "10000").strip(), "1")
        self.assertEqual(srv.cli("sadd", "my_queue", "data_delays_1_seconds",
                                 "1000").strip(), "1")
        self.assertEqual(srv.cli("sadd", "my_queue", "data_delays_5_seconds",
                                 "5000").strip(), "1")
        print("\n  sent 3 messages (10 s, 1 s, 5 s)")

        # Nothing is due yet.
        out = srv.cli("spop", "my_queue", "10")
        self.assertEqual(out.strip(), "", "nothing due yet, got %r" % out)

        # 6. sleep 6 seconds, consume
        time.sleep(max(0, t0 + 6 - time.monotonic()))
        out = srv.cli("spop", "my_queue", "10")
        self.assertEqual(out.split(), ["data_delays_1_seconds",
                                       "data_delays_5_seconds"],
                         "after 6 s: %r" % out)
        # redis-cli's tty-style rendering, as shown in the README
        print("  after 6 s: %r" % out)

        # the queue list
        out = srv.cli("keys")
        self.assertEqual(out.split(), ["my_queue"], "keys: %r" % out)
        out = srv.cli("--no-raw", "keys")
        self.assertEqual(out.strip(), '1) "my_queue"', "keys: %r" % out)

        # sleep 4 more seconds
        time.sleep(max(0, t0 + 10.2 - time.monotonic()))
        out = srv.cli("--no-raw", "spop", "my_queue", "10")
        self.assertEqual(out.strip(), '1) "data_delays_10_seconds"',
                         "after 10 s: %r" % out)
        print("  after 10 s: %r" % out)

        # drained: nothing more, and the queue is gone from KEYS
        self.assertEqual(srv.cli("--no-raw", "spop", "my_queue", "10").strip(),
                         "(empty array)")
        self.assertEqual(srv.cli("--no-raw", "keys").strip(), "(empty array)")
        srv.stop()


if __name__ == "__main__":
    dqtest.main()
