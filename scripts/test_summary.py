#!/usr/bin/env python3
"""Sum up `meson test` runs for scripts/test.sh.

usage: test_summary.py LABEL=BUILD/meson-logs/testlog.json... [LABEL=!]...
("LABEL=!" stands for a run that could not even be built: it counts as one failed test.)

Prints one line per test (result, duration, and the test's own closing count when it printed
one: "N passed, M failed" from our runners, Criterion's "Synthesis: Tested: ..."), then the
individual checks added up, and last the line `N passed, M failed` over all meson tests of all
the runs given (a test counts as failed unless meson called it OK, SKIP or EXPECTEDFAIL; skipped
tests are reported after a comma). Standard library only, so any python3 runs it.
"""
import json
import re
import sys

PLAIN = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed", re.MULTILINE)
CRITERION = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| "
                       r"Crashing: (\d+)")
GOOD = {"OK", "EXPECTEDFAIL"}


def inner_counts(output: str):
    """(passed, failed) of the last closing line a test printed, or None."""
    plain = PLAIN.findall(output)
    if plain:
        return int(plain[-1][0]), int(plain[-1][1])
    crit = CRITERION.findall(output)
    if crit:
        _, passing, failing, crashing = map(int, crit[-1])
        return passing, failing + crashing
    return None


def read_log(path: str):
    tests = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    tests.append(json.loads(line))
    except OSError as e:
        print(f"no test log {path}: {e.strerror}")
    return tests


def main() -> int:
    passed = failed = skipped = 0
    checks_passed = checks_failed = 0
    for arg in sys.argv[1:]:
        label, _, path = arg.partition("=")
        if path == "!":
            print(f"-- {label}: FAILED to configure or build")
            failed += 1
            continue
        tests = read_log(path)
        print(f"-- {label}: {len(tests)} tests")
        for t in tests:
            result = t["result"]
            counts = inner_counts(t.get("stdout", "") + t.get("stderr", ""))
            detail = f"  ({counts[0]} passed, {counts[1]} failed inside)" if counts else ""
            print(f"   {result:<8} {t['duration']:7.1f}s  {t['name']}{detail}")
            if counts:
                checks_passed += counts[0]
                checks_failed += counts[1]
            if result == "SKIP":
                skipped += 1
            elif result in GOOD:
                passed += 1
            else:
                failed += 1
    print(f"individual checks inside those tests: {checks_passed} ok, {checks_failed} not ok")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
