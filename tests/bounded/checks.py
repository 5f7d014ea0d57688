"""Shared by the bounded-dim scripts: one `kiln check` run, reported as a PASS/FAIL line."""
import os
import subprocess
import sys


def run_check(kiln, model, args, label, sanitize=None, timeout=1200):
    """True when `kiln check MODEL ARGS` passes; prints one line (and the output on failure)."""
    cmd = [os.path.abspath(kiln), "check", model] + args
    if sanitize:
        cmd += ["--sanitize", sanitize]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    ok = r.returncode == 0 and r.stdout.rstrip().endswith("PASS")
    print(f"{'PASS' if ok else 'FAIL'} {label}")
    if not ok:
        print("     " + (r.stdout + r.stderr).strip().replace("\n", "\n     "))
    return ok


class Tally:
    """Counts the cases; `finish` prints "N passed, M failed" and exits 1 on any failure."""

    def __init__(self):
        self.passed = self.failed = 0

    def add(self, ok):
        self.passed += ok
        self.failed += not ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
