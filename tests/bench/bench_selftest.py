#!/usr/bin/env python3
"""Self-test of `kiln bench`: it runs, reports every field with sane values, and fails cleanly.

Usage: bench_selftest.py KILN [--model PATH]

Runs `kiln bench` on ../shared/models/mlp/model.onnx with --runs 3 --warmup 1, then with
--profile, with --threads 2 and with both, and checks the report's lines and values: positive times with
min <= median, FLOPs and a peak above 0, the profile's rows adding up to the kernel count and
its node count, the thread count; a model without data sets runs on pseudo-random inputs. No
timing thresholds: the machine may be busy. Then the bad
inputs: a missing model and a missing --data folder give one clear message and exit 1. No
temporary folder may be left behind. Exit 77 (skipped) when the shared models are absent.
Prints one line per case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared",
                             "models", "mlp", "model.onnx")
QUICK = ["--runs", "3", "--warmup", "1"]
NUM = r"([0-9]+(?:\.[0-9]+)?)"


class Failure(Exception):
    pass


def run(kiln, args, tmpdir):
    env = dict(os.environ, TMPDIR=tmpdir)
    p = subprocess.run([kiln, "bench"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       errors="replace", env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def field(out, pattern):
    m = re.search(pattern, out, re.MULTILINE)
    if not m:
        raise Failure("no line matching %r" % pattern)
    return m.groups()


def need(cond, what):
    if not cond:
        raise Failure(what)


def check_report(out, threads):
    """The fields every report has; returns the number of kernels."""
    field(out, r"^model: +mlp \(.*model\.onnx\), 1 input, 1 output$")
    field(out, r"^target: +x86-64 \(cpu x86-64\), 128-bit vectors \(4 float lanes\), no FMA$")
    need(int(field(out, r"^threads: +(\d+)$")[0]) == threads, "threads line")
    secs, kernels, ws = field(out, r"^compile: +%s s, (\d+) kernels, workspace (\d+) bytes$" % NUM)
    need(float(secs) > 0 and int(kernels) > 0 and int(ws) >= 0, "compile line values")
    field(out, r"^inputs: +test_data_set_0$")
    need(int(field(out, r"^flops: +(\d+) per inference$")[0]) > 0, "flops > 0")
    need(field(out, r"^runs: +(\d+) timed after (\d+) warm-up$") == ("3", "1"), "runs line")
    tmin, tmed = map(float, field(out, r"^time: +min %s ms, median %s ms$" % (NUM, NUM)))
    need(0 < tmin <= tmed, "0 < min <= median (min %g, median %g)" % (tmin, tmed))
    smin, smed = map(float, field(out, r"^speed: +%s GFLOP/s at min, %s GFLOP/s at median$"
                                  % (NUM, NUM)))
    need(smin >= smed > 0, "speed at min >= at median > 0")
    peak, n = field(out, r"^peak: +%s GFLOP/s for (\d+) threads? \(measured" % NUM)
    need(float(peak) > 0 and int(n) == threads, "peak > 0 for %d threads" % threads)
    pmin, pmed = map(float, field(out, r"^of peak: +%s%% at min, %s%% at median$" % (NUM, NUM)))
    need(pmin >= pmed > 0, "of peak at min >= at median > 0")
    need(abs(pmin - 100 * smin / float(peak)) <= 0.01 * pmin + 0.1, "of peak = speed / peak")
    return int(kernels)


def check_profile(out, kernels, threads):
    n_k, n_nodes = map(int, field(out, r"^profile: +3 runs of the profiled entry \(%d threads?\), "
                                       r"(\d+) kernels in (\d+) nodes$" % threads))
    need(n_k == kernels, "profile kernel count = compile's (%d vs %d)" % (n_k, kernels))
    table = out[out.index("\nprofile:"):]
    rows = re.findall(r"^  (\S+) +(\S+) +(\d+) +%s +%s%% +(\S+)$" % (NUM, NUM), table, re.M)
    total = re.findall(r"^  total +(\d+) +%s +%s%% +(\S+)$" % (NUM, NUM), table, re.M)
    need(len(rows) == n_nodes, "one row per node (%d rows, %d nodes)" % (len(rows), n_nodes))
    need(sum(int(r[2]) for r in rows) == kernels, "rows' kernels add up to %d" % kernels)
    need(all(r[1] == "Gemm" for r in rows), "mlp's nodes are Gemms")
    need(all(float(r[3]) > 0 for r in rows), "every node takes time")
    times = [float(r[3]) for r in rows]
    need(times == sorted(times, reverse=True), "rows sorted by time")
    need(len(total) == 1 and int(total[0][0]) == kernels, "total line")
    need(abs(sum(float(r[4]) for r in rows) - 100) < 0.5, "shares add up to 100%")
    kern, run = map(float, field(out, r"^profile total: kernels %s ms of %s ms per profiled run"
                                 % (NUM, NUM)))
    need(0 < kern <= run, "kernels' time within the profiled run's")


def bad_input(kiln, args, message, tmpdir):
    rc, out, err = run(kiln, args, tmpdir)
    lines = err.strip().splitlines()
    need(rc == 1, "exit status 1 (got %d)" % rc)
    need(len(lines) == 1 and message in lines[0], "one message with %r, got %r" % (message, err))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--model", default=os.environ.get("KILN_BENCH_MODEL", DEFAULT_MODEL))
    args = ap.parse_args()
    kiln, model = os.path.abspath(args.kiln), args.model
    if not os.path.exists(model):
        print("SKIP: no %s (the shared models)" % model)
        return 77
    work = tempfile.mkdtemp(prefix="kiln-bench-selftest-")
    tmpdir = os.path.join(work, "tmp")
    os.makedirs(tmpdir)

    def report(extra, threads, profile):
        rc, out, err = run(kiln, [model] + QUICK + extra, tmpdir)
        if rc != 0:
            raise Failure("exit %d\n%s%s" % (rc, out, err))
        try:
            kernels = check_report(out, threads)
            if profile:
                check_profile(out, kernels, threads)
        except Failure as e:
            raise Failure("%s\n%s" % (e, out))

    def random_inputs():
        lone = os.path.join(work, "lone", "mlp.onnx")  # no test_data_set_* beside it
        os.makedirs(os.path.dirname(lone))
        shutil.copy(model, lone)
        rc, out, err = run(kiln, [lone] + QUICK, tmpdir)
        need(rc == 0, "exit %d\n%s%s" % (rc, out, err))
        field(out, r"^inputs: +pseudo-random \(there is no data set beside the model\)$")
        field(out, r"^time: +min %s ms" % NUM)

    cases = [
        ("report, 1 thread", lambda: report([], 1, False)),
        ("no data set: pseudo-random inputs", random_inputs),
        ("--profile", lambda: report(["--profile"], 1, True)),
        ("--threads 2", lambda: report(["--threads", "2"], 2, False)),
        ("--profile --threads 2", lambda: report(["--profile", "--threads", "2"], 2, True)),
        ("missing model", lambda: bad_input(kiln, [os.path.join(work, "none.onnx")],
                                            "cannot read model", tmpdir)),
        ("missing --data folder", lambda: bad_input(kiln, [model, "--data", "/nonexistent/set"],
                                                    "does not exist", tmpdir)),
        ("bad --threads", lambda: bad_input(kiln, [model, "--threads", "0"], "bad count",
                                            tmpdir)),
        ("no temporary folder left behind",
         lambda: need(not os.listdir(tmpdir), "left: %s" % ", ".join(os.listdir(tmpdir)))),
    ]
    passed = failed = 0
    try:
        for name, case in cases:
            try:
                case()
                passed += 1
                print("PASS %s" % name)
            except (Failure, subprocess.TimeoutExpired) as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
