#!/usr/bin/env python3
"""Conformance runner: `kiln check` on every ONNX backend test, in parallel.

Usage:
  run.py KILN [--suites node,simple,pytorch-converted,pytorch-operator] [--data DIR]
              [--jobs N] [--timeout S] [--filter REGEX] [--list passing.txt] [--update]
              [--report FILE] [--kiln-arg ARG]... [--only-listed]

Each test folder holds model.onnx and test_data_set_N/; kiln compiles the model through the real
path, runs it on the stored inputs and compares with the stored outputs. One line per test:
  PASS suite/test | FAIL suite/test: reason | UNSUPPORTED suite/test: operators
then a per-operator summary, totals per suite, and the regression check against the committed
list of passing tests: a listed test that does not pass is REGRESSED (exit 1); a passing test
that is not listed is NEWLY PASSING (exit 0, so the list can grow; --update rewrites it).
With --only-listed only the tests in the list run (the subsets that emulated targets are held
to: tests/conformance/*.txt). The last line is `N passed, M failed`, where M counts regressions: tests not yet listed are
expected to fail, so they do not turn the test suite red.

Operators per test are read from model.onnx with a minimal protobuf walk (stdlib only): it never
trips over fields newer than the installed onnx package knows, and costs no import.
"""
import argparse
import concurrent.futures as futures
import os
import re
import signal
import subprocess
import sys
import time

SUITES = ["node", "simple", "pytorch-converted", "pytorch-operator"]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "onnx-backend-tests")
DEFAULT_LIST = os.path.join(HERE, "passing.txt")
FAILURE_CAUSES = os.path.join(HERE, "failure_causes.txt")
# The lead's pass_resolve_ops prints "unsupported operator(s): Foo (opset 13), Bar (opset 11)".
UNSUPPORTED_RE = re.compile(r"unsupported operators?(?:\(s\))?:?\s*(.*)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------
# Operators of a model: a protobuf walk over ModelProto.graph.node[].op_type (and subgraphs)
# ------------------------------------------------------------------------------------------

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yield (field number, wire type, value) of one message; value is bytes for LEN fields."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = None, pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = None, pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield num, wire, val


def _graph_ops(graph, ops):
    for num, wire, val in _fields(graph):
        if num == 1 and wire == 2:  # GraphProto.node
            _node_ops(val, ops)


def _node_ops(node, ops):
    op_type, domain = "", ""
    for num, wire, val in _fields(node):
        if wire != 2:
            continue
        if num == 4:  # NodeProto.op_type
            op_type = val.decode("utf-8", "replace")
        elif num == 7:  # NodeProto.domain
            domain = val.decode("utf-8", "replace")
        elif num == 5:  # NodeProto.attribute: look for subgraphs (g = 6, graphs = 11)
            for anum, awire, aval in _fields(val):
                if awire == 2 and anum in (6, 11):
                    _graph_ops(aval, ops)
    if domain and domain != "ai.onnx":
        op_type = domain + "." + op_type
    ops.add(op_type)


def model_ops(path):
    """Sorted operator names used by a model (subgraphs included); None if unreadable."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
        ops = set()
        for num, wire, val in _fields(buf):
            if num == 7 and wire == 2:  # ModelProto.graph
                _graph_ops(val, ops)
        return sorted(ops) if ops else None
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------
# Running one test
# ------------------------------------------------------------------------------------------

class Result:
    def __init__(self, name, status, reason="", seconds=0.0, ops=None, unsupported=None):
        self.name, self.status, self.reason, self.seconds = name, status, reason, seconds
        self.ops = ops or []
        self.unsupported = unsupported or []  # operator names kiln reported as unsupported

    def line(self):
        return "%s %s%s" % (self.status, self.name, ": " + self.reason if self.reason else "")


def _strip_file_prefix(line, model):
    """Diagnostics read 'FILE: message'; the test name already says which file."""
    for prefix in (model + ": ", os.path.basename(model) + ": "):
        if line.startswith(prefix):
            return line[len(prefix):]
    return line


def _first_reason(out, err, model):
    for line in err.splitlines():
        if line.strip():
            return _strip_file_prefix(line.strip(), model)
    fails = [ln for ln in out.splitlines() if ln.rstrip().endswith("FAIL") and "output" in ln]
    if fails:
        return fails[0].strip()
    lines = [ln for ln in out.splitlines() if ln.strip() and ln.strip() not in ("FAIL", "PASS")]
    return lines[-1].strip() if lines else "no output"


def _unsupported(err):
    """Operator list from kiln's message, or None when the test is not 'unsupported'."""
    for line in err.splitlines():
        m = UNSUPPORTED_RE.search(line)
        if m:
            text = m.group(1).strip()
            names = [re.sub(r"\s*\(.*", "", part).strip() for part in text.split(",")]
            return text, [n for n in names if n]
    return None


def run_test(kiln, kiln_args, data, name, timeout):
    model = os.path.join(data, name, "model.onnx")
    ops = model_ops(model) or ["(%s)" % name.split("/", 1)[1]]
    cmd = [kiln, "check", model] + kiln_args
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return Result(name, "FAIL", "timed out after %d s" % timeout, timeout, ops)
    except OSError as e:
        return Result(name, "FAIL", "cannot run kiln: %s" % e, 0.0, ops)
    seconds = time.monotonic() - start
    out, err = p.stdout, p.stderr
    if p.returncode == 0 and out.rstrip().endswith("PASS"):
        # inputs compiled for their data set's value (kiln check's --value from the data set)
        bound = [ln.split(": ", 1)[1].strip() for ln in out.splitlines()
                 if ln.startswith("values bound from ")]
        return Result(name, "PASS", "values bound: " + ", ".join(bound) if bound else "",
                      seconds, ops)
    if p.returncode < 0:
        try:
            sig = signal.Signals(-p.returncode).name
        except ValueError:
            sig = str(-p.returncode)
        return Result(name, "FAIL", "kiln crashed (%s)" % sig, seconds, ops)
    unsup = _unsupported(err)
    if unsup:
        return Result(name, "UNSUPPORTED", unsup[0], seconds, ops, unsup[1])
    # Paths inside the test folder say nothing the test name does not: keep the line short.
    reason = _first_reason(out, err, model).replace(os.path.join(data, name) + "/", "")
    return Result(name, "FAIL", reason, seconds, ops)


# ------------------------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------------------------

def per_operator(results):
    """op -> [pass, fail, unsupported]. An unsupported test counts against the operators kiln
    named; any other test counts for every operator in its model."""
    table = {}
    for r in results:
        ops = r.unsupported if r.status == "UNSUPPORTED" and r.unsupported else r.ops
        col = {"PASS": 0, "FAIL": 1, "UNSUPPORTED": 2}[r.status]
        for op in ops:
            table.setdefault(op, [0, 0, 0])[col] += 1
    return table


def per_suite(results):
    table = {}
    for r in results:
        suite = r.name.split("/", 1)[0]
        row = table.setdefault(suite, [0, 0, 0, 0])
        row[{"PASS": 0, "FAIL": 1, "UNSUPPORTED": 2}[r.status]] += 1
        row[3] += 1
    return table


def print_summary(results, out):
    ops = per_operator(results)
    width = max([len(op) for op in ops] + [8])
    out.write("\nper operator (tests that use it):\n")
    out.write("  %-*s %6s %6s %12s\n" % (width, "operator", "pass", "fail", "unsupported"))
    for op in sorted(ops, key=lambda o: o.lower()):
        p, f, u = ops[op]
        out.write("  %-*s %6d %6d %12d\n" % (width, op, p, f, u))
    out.write("\nper suite:\n")
    suites = per_suite(results)
    for suite in SUITES + sorted(set(suites) - set(SUITES)):
        if suite in suites:
            p, f, u, n = suites[suite]
            out.write("  %-18s %4d passed, %4d failed, %4d unsupported (of %d)\n"
                      % (suite, p, f, u, n))


def read_failure_causes(path=FAILURE_CAUSES):
    """suite/test -> why it fails on its values (failure_causes.txt)."""
    causes = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    name, _, why = line.rstrip("\n").partition("\t")
                    causes[name] = why
    return causes


def write_report(path, results, regressed, newly, wall):
    suites = per_suite(results)
    ops = per_operator(results)
    tot = [sum(r.status == s for r in results) for s in ("PASS", "FAIL", "UNSUPPORTED")]
    with open(path, "w") as f:
        f.write("# kiln conformance report\n\n")
        f.write("%d passed, %d failed, %d unsupported of %d ONNX backend tests"
                " (wall time %.0f s).\n\n" % (tot[0], tot[1], tot[2], len(results), wall))
        if regressed:
            f.write("**Regressed** (listed as passing, now not): %s\n\n" % ", ".join(regressed))
        if newly:
            f.write("Newly passing (not yet listed): %d\n\n" % len(newly))
        f.write("## Per suite\n\n| suite | pass | fail | unsupported | total |\n"
                "|---|---|---|---|---|\n")
        for suite in SUITES + sorted(set(suites) - set(SUITES)):
            if suite in suites:
                f.write("| %s | %d | %d | %d | %d |\n" % ((suite,) + tuple(suites[suite])))
        f.write("\n## Per operator\n\nAn unsupported test counts against the operators kiln named;"
                " any other test counts for every operator its model uses.\n\n"
                "| operator | pass | fail | unsupported |\n|---|---|---|---|\n")
        for op in sorted(ops, key=lambda o: o.lower()):
            f.write("| %s | %d | %d | %d |\n" % ((op,) + tuple(ops[op])))
        causes = read_failure_causes()
        f.write("\n## Failing tests\n\nA refusal's message is its reason; a test that fails on "
                "its values has its cause beside it (`tests/conformance/failure_causes.txt`).\n\n"
                "| test | reason |\n|---|---|\n")
        for r in sorted(results, key=lambda r: r.name):
            if r.status == "FAIL":
                why = r.reason + (" — cause: " + causes[r.name] if r.name in causes else "")
                f.write("| %s | %s |\n" % (r.name, why.replace("|", "\\|")))
        bound = [r for r in results if r.status == "PASS" and r.reason]
        if bound:
            f.write("\n## Passing with input values bound\n\nThese models take a shape, a trip "
                    "count, a position or a condition as a run-time input and need its value to "
                    "compile. `kiln check` compiles them for the value the data set holds "
                    "(`--value`), and predict checks that the input holds it (`KILN_E_SHAPE` "
                    "for any other).\n\n| test | inputs bound |\n|---|---|\n")
            for r in sorted(bound, key=lambda r: r.name):
                f.write("| %s | %s |\n" % (r.name, r.reason.split(": ", 1)[1].replace("|", "\\|")))
        f.write("\n## Unsupported tests\n\n| test | operators |\n|---|---|\n")
        for r in sorted(results, key=lambda r: r.name):
            if r.status == "UNSUPPORTED":
                f.write("| %s | %s |\n" % (r.name, r.reason.replace("|", "\\|")))


# ------------------------------------------------------------------------------------------
# The passing list
# ------------------------------------------------------------------------------------------

def read_list(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}


def write_list(path, names):
    with open(path, "w") as f:
        for name in sorted(names):
            f.write(name + "\n")


def discover(data, suites, pattern):
    tests = []
    for suite in suites:
        root = os.path.join(data, suite)
        if not os.path.isdir(root):
            sys.exit("run.py: no suite folder %s" % root)
        for test in sorted(os.listdir(root)):
            name = suite + "/" + test
            if os.path.exists(os.path.join(root, test, "model.onnx")) and \
                    (not pattern or pattern.search(name)):
                tests.append(name)
    return tests


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kiln", help="path of the kiln binary")
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--data", default=os.environ.get("KILN_BACKEND_TESTS", DEFAULT_DATA))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per test")
    ap.add_argument("--filter", help="only tests whose suite/name matches this regex")
    ap.add_argument("--list", default=DEFAULT_LIST, help="committed list of passing tests")
    ap.add_argument("--update", action="store_true", help="rewrite the list with what passes")
    ap.add_argument("--report", help="write a markdown report here")
    ap.add_argument("--kiln-arg", action="append", default=[],
                    help="extra argument for `kiln check` (repeatable), e.g. --kiln-arg=-O1")
    ap.add_argument("--quiet", action="store_true", help="print only non-passing test lines")
    ap.add_argument("--only-listed", action="store_true",
                    help="run only the tests in --list (a target's subset, e.g. bare-metal.txt)")
    args = ap.parse_args()

    kiln = os.path.abspath(args.kiln)
    if not os.access(kiln, os.X_OK):
        sys.exit("run.py: %s is not an executable" % args.kiln)
    suites = [s for s in args.suites.split(",") if s]
    pattern = re.compile(args.filter) if args.filter else None
    tests = discover(args.data, suites, pattern)
    if args.only_listed:
        wanted = read_list(args.list)
        tests = [t for t in tests if t in wanted]
    if not tests:
        sys.exit("run.py: no tests selected under %s" % args.data)

    start = time.monotonic()
    results = []
    with futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = [pool.submit(run_test, kiln, args.kiln_arg, args.data, t, args.timeout)
                for t in tests]
        for job in futures.as_completed(jobs):
            r = job.result()
            results.append(r)
            if not (args.quiet and r.status == "PASS"):
                print(r.line(), flush=True)
    wall = time.monotonic() - start
    results.sort(key=lambda r: r.name)

    print_summary(results, sys.stdout)
    passed = {r.name for r in results if r.status == "PASS"}
    selected = set(tests)
    listed = read_list(args.list)
    in_scope = {name for name in listed
                if name.split("/", 1)[0] in suites and (not pattern or pattern.search(name))}
    regressed = sorted(in_scope - passed)
    newly = sorted(passed - listed)
    for name in regressed:
        why = "not found" if name not in selected else \
            next(r.line() for r in results if r.name == name)
        print("REGRESSED %s (%s)" % (name, why))
    for name in newly:
        print("NEWLY PASSING %s" % name)

    tot = [sum(r.status == s for r in results) for s in ("PASS", "FAIL", "UNSUPPORTED")]
    slow = sorted(results, key=lambda r: -r.seconds)[:5]
    print("\nslowest: " + ", ".join("%s %.1f s" % (r.name, r.seconds) for r in slow))
    print("overall: %d passed, %d failed, %d unsupported (of %d) in %.0f s with %d jobs"
          % (tot[0], tot[1], tot[2], len(results), wall, args.jobs))
    print("passing list %s: %d listed, %d regressed, %d newly passing"
          % (os.path.relpath(args.list), len(listed), len(regressed), len(newly)))

    if args.update:
        # Tests outside this run's selection keep their entries.
        write_list(args.list, (listed - in_scope) | passed)
        print("updated %s: %d tests" % (args.list, len((listed - in_scope) | passed)))
        regressed = []
    if args.report:
        write_report(args.report, results, regressed, newly, wall)
    print("%d passed, %d failed" % (tot[0], len(regressed)))
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
