"""Chaos in miniature: tests/integration/chaos.py for a few seconds per
durability.

Producers and consumers of every kind run while workers, the housekeeper
and the flusher are killed with kill -9 and the server reloads; then the
queues are drained and every rule is checked (chaos.py's header): nothing
acknowledged lost, nothing early, no SPOP duplicate, nothing delivered
after its QACK, dead letters, counts, dqctl verify.  The long soaks run
chaos.py by hand.
"""
import os
import shutil
import tempfile

import chaos
import dqtest

DQCTL = os.environ.get("DQCTL") or os.path.join(
    os.path.dirname(dqtest.DQD), "dqctl")


class ChaosTest(dqtest.TestCase):

    def soak(self, durability, seconds, *extra):
        tmp = tempfile.mkdtemp(prefix="dqchaos-")
        self.addCleanup(shutil.rmtree, tmp, True)
        argv = ["--dqd", dqtest.DQD, "--dqctl", DQCTL,
                "--dir", os.path.join(tmp, "run"),
                "--port", str(dqtest.free_port()),
                "--durability", durability, "--duration", str(seconds),
                "--producers", "3", "--consumers", "2", "--queues", "4",
                "--chaos-min", "0.5", "--chaos-max", "1.5",
                "--crash-ratio", "0.1", "--keep",
                # a loaded machine: the data rules are what counts here
                "--outage-limit", "6"] + list(extra)
        rc = chaos.main(argv)
        if rc != 0:
            with open(os.path.join(tmp, "run", "dqd.log"),
                      errors="replace") as f:
                print(f.read()[-20000:])
        self.assertEqual(rc, 0, "chaos found problems (above)")

    def test_fsync(self):
        self.soak("fsync", 12, "--seed", "11")

    def test_write(self):
        self.soak("write", 12, "--seed", "12")

    def test_deadlocks(self):
        """Only injected deadlocks (DEBUG DEADLOCK, up to 40 in a row):
        batches run again and commands run alone under the whole load."""
        self.soak("fsync", 8, "--seed", "13", "--only", "deadlock",
                  "--chaos-min", "0.2", "--chaos-max", "0.5")


if __name__ == "__main__":
    dqtest.main()
