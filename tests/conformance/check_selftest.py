#!/usr/bin/env python3
"""Self-test of `kiln check` itself: it must pass what is right and catch what is wrong.

Usage: check_selftest.py KILN [--data DIR]

Builds small cases in a temporary folder from the backend test node/test_add (Z = X + Y,
float32[3,4,5]) by swapping its data files, then runs `kiln check` on each and checks the exit
status and the message: a correct model passes; wrong expected outputs, an input of the wrong
shape, a missing or unreadable .pb file, a missing data folder fail with a clear message; the
tolerance options work; symbolic input dims are bound from the first data set (needs the `onnx`
package to write that model; skipped without it); no temporary folder is left behind.
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
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared",
                            "onnx-backend-tests")
LINE_RE = re.compile(r"^test_data_set_0 output '\w+' float32\[3,4,5\]: max abs err \S+, "
                     r"max rel err \S+ PASS$", re.MULTILINE)


def make_case(work, data, name, edit):
    """A copy of node/test_add under work/name, changed by edit(test_dir, data_set_dir)."""
    dst = os.path.join(work, name)
    shutil.copytree(os.path.join(data, "node", "test_add"), dst)
    edit(dst, os.path.join(dst, "test_data_set_0"))
    return os.path.join(dst, "model.onnx")


def swap(src_test, src_file, dst_file):
    def edit(test_dir, set_dir):
        shutil.copy(os.path.join(DATA, "node", src_test, "test_data_set_0", src_file),
                    os.path.join(set_dir, dst_file))
    return edit


def remove(name):
    return lambda test_dir, set_dir: os.remove(os.path.join(set_dir, name))


def garbage(name):
    def edit(test_dir, set_dir):
        with open(os.path.join(set_dir, name), "wb") as f:
            f.write(b"\xff\xff\xff\xff not a tensor")
    return edit


def no_data_sets(test_dir, set_dir):
    shutil.rmtree(set_dir)


def unchanged(test_dir, set_dir):
    pass


def symbolic_model(work):
    """Add with input dims ['N', 4] and data of shape [2,4]: needs onnx to write; None without.
    When this python lacks onnx, the system's python3 (Debian's python3-onnx) may have it."""
    d = os.path.join(work, "symbolic")
    try:
        write_symbolic_model(d)
    except ImportError:
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) == os.path.realpath(system) or \
                not os.access(system, os.X_OK):
            return None
        shutil.rmtree(d, ignore_errors=True)
        if subprocess.run([system, os.path.abspath(__file__), "--write-symbolic", d],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            return None
    return os.path.join(d, "model.onnx")


def write_symbolic_model(d):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    os.makedirs(os.path.join(d, "test_data_set_0"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])
    node = helper.make_node("Add", ["x", "x"], ["z"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [z]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, os.path.join(d, "model.onnx"))
    xv = np.arange(8, dtype=np.float32).reshape(2, 4)
    for i, (n, a) in enumerate([("input_0", xv), ("output_0", xv + xv)]):
        with open(os.path.join(d, "test_data_set_0", n + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, "x" if i == 0 else "z").SerializeToString())


def run(kiln, model, extra, tmpdir):
    env = dict(os.environ, TMPDIR=tmpdir)
    p = subprocess.run([kiln, "check", model] + extra, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, errors="replace", env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    global DATA
    if len(sys.argv) == 3 and sys.argv[1] == "--write-symbolic":  # run under another python
        write_symbolic_model(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--data", default=os.environ.get("KILN_BACKEND_TESTS", DEFAULT_DATA))
    args = ap.parse_args()
    DATA = args.data
    kiln = os.path.abspath(args.kiln)

    work = tempfile.mkdtemp(prefix="kiln-check-selftest-")
    tmpdir = os.path.join(work, "tmp")  # kiln check's own temporary folders go here
    os.makedirs(tmpdir)
    # (name, edit or model path, extra args, expected status, regex on stdout+stderr)
    cases = [
        ("correct", unchanged, [], 0, LINE_RE),
        ("wrong output", swap("test_sub", "output_0.pb", "output_0.pb"), [], 1,
         re.compile(r"max abs err .* FAIL\n.*elements differ", re.S)),
        ("wrong output within --atol 100", swap("test_sub", "output_0.pb", "output_0.pb"),
         ["--atol", "100"], 0, re.compile(r"PASS\s*$")),
        ("input of another shape", swap("test_add_bcast", "input_1.pb", "input_1.pb"), [], 1,
         re.compile(r"input_1\.pb is float32\[5\], but input 'y' is compiled as float32\[3,4,5\]")),
        ("missing input file", remove("input_1.pb"), [], 1, re.compile(r"has 1 inputs")),
        ("unreadable input file", garbage("input_0.pb"), [], 1, re.compile(r"input_0\.pb")),
        ("no data set beside the model", no_data_sets, [], 1, re.compile(r"no test_data_set_")),
        ("missing --data folder", unchanged, ["--data", "/nonexistent/set"], 1,
         re.compile(r"/nonexistent/set' does not exist")),
    ]
    passed = failed = 0
    try:
        for name, edit, extra, want_rc, want_re in cases:
            model = make_case(work, DATA, re.sub(r"\W+", "_", name), edit)
            rc, out, err = run(kiln, model, extra, tmpdir)
            ok = rc == want_rc and want_re.search(out + err)
            passed, failed = passed + bool(ok), failed + (not ok)
            print("%s %s" % ("PASS" if ok else "FAIL", name))
            if not ok:
                print("  exit %d (want %d); output:\n%s%s" % (rc, want_rc, out, err))
        model = symbolic_model(work)
        if model is None:
            print("SKIP symbolic dims bound from data (no onnx package)")
        else:
            rc, out, err = run(kiln, model, [], tmpdir)
            ok = rc == 0 and "float32[2,4]" in out
            passed, failed = passed + ok, failed + (not ok)
            print("%s symbolic dims bound from data" % ("PASS" if ok else "FAIL"))
            if not ok:
                print("  exit %d; output:\n%s%s" % (rc, out, err))
        left = os.listdir(tmpdir)
        ok = not left
        passed, failed = passed + ok, failed + (not ok)
        print("%s no temporary folder left behind%s" % ("PASS" if ok else "FAIL",
                                                        "" if ok else ": " + ", ".join(left)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
