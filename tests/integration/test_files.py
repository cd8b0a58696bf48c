"""The files that go with the daemon: the man pages are clean under
mandoc -Tlint, the systemd unit passes systemd-analyze verify, and the
sample configuration loads."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRCDIR = os.environ.get("SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DQD = os.environ.get("DQD") or "/tmp/build/dqd"
BUILDDIR = os.path.dirname(os.path.abspath(DQD))


def need(tool):
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("%s is needed by this test (quickstart.sh "
                             "test installs it)" % tool)
    return path


class FilesTest(unittest.TestCase):

    def test_man_pages_lint_clean(self):
        mandoc = need("mandoc")
        for page in ("dqd.8", "dqd.conf.5", "dqctl.8"):
            p = subprocess.run([mandoc, "-Tlint", "-Wwarning",
                                os.path.join(SRCDIR, "man", page)],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, "%s: %s" % (page, p.stdout))
            print("mandoc -Tlint %s: clean" % page)

    def test_man_pages_groff_clean(self):
        """man(1) formats with groff: not a warning with -ww either (an
        empty .Qq before punctuation made groff's mdoc warn)."""
        groff = need("groff")
        for page in ("dqd.8", "dqd.conf.5", "dqctl.8"):
            p = subprocess.run([groff, "-mdoc", "-ww", "-z",
                                os.path.join(SRCDIR, "man", page)],
                               capture_output=True, text=True)
            self.assertEqual((p.returncode, p.stderr), (0, ""), page)
            print("groff -ww %s: clean" % page)

    def test_systemd_unit_verifies(self):
        analyze = need("systemd-analyze")
        unit = os.path.join(BUILDDIR, "etc", "dqd.service")
        self.assertTrue(os.path.exists(unit), "make builds etc/dqd.service")
        tmp = tempfile.mkdtemp(prefix="dqunit-")
        try:
            conf = os.path.join(tmp, "dqd.conf")
            shutil.copy(os.path.join(SRCDIR, "etc", "dqd.conf"), conf)
            text = open(unit).read()
            # The installed paths may not exist here: point the unit at
            # this build, which is what verify checks for.
            text = re.sub(r"/[^\s=]*/sbin/dqd", DQD, text)
            text = re.sub(r"/[^\s=]*/dqd\.conf", conf, text)
            path = os.path.join(tmp, "dqd.service")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([analyze, "verify", "--man=no", path],
                               capture_output=True, text=True)
            out = p.stdout + p.stderr
            self.assertEqual(p.returncode, 0, out)
            self.assertNotIn("dqd.service:", out, out)
            print("systemd-analyze verify: ok")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sample_config_loads(self):
        p = subprocess.run([DQD, "-t", "-c",
                            os.path.join(SRCDIR, "etc", "dqd.conf")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
