#!/usr/bin/env python3
"""Bad inputs: every kind of broken model gets one clear error and no output.

Usage: run.py KILN   (KILN: the kiln binary)

Each case writes a broken model (with python3-onnx's helpers) into a fresh temporary folder,
runs `kiln compile BAD.onnx -o OUT/model.o` and checks that kiln
  - exits with status 1,
  - prints on stderr one message line (several errors of one kind share the line when the
    compiler gathers them, e.g. all unsupported operators) naming the file and, where the
    fault lies in a node, the node,
  - leaves nothing behind in OUT (no object, no header).
Prints one line per case and "N passed, M failed"; exits 1 if any case fails.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="kiln-bad-inputs")


def tensor_in(name, shape):
    return helper.make_tensor_value_info(name, F, shape)


def add_model():
    """A valid model: y = Relu(x + W), the base that most cases break."""
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    return model([helper.make_node("Add", ["x", "W"], ["s"], name="add0"),
                  helper.make_node("Relu", ["s"], ["y"], name="relu0")],
                 [tensor_in("x", [2, 3])], [tensor_in("y", [2, 3])], [w])


def save(m, folder):
    path = os.path.join(folder, "bad.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path


def external_weight_model(location):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    m = add_model()
    del m.graph.initializer[:]
    m.graph.initializer.append(w)
    return m


# ---- the cases: each returns (model path, extra kiln arguments, fragments stderr must hold) --

def case_not_protobuf(d):
    path = os.path.join(d, "bad.onnx")
    with open(path, "wb") as f:
        f.write(b"GIF89a this is an image, not a model \xff\xfe\xfd" * 10)
    return path, [], ["not an ONNX model"]


def case_truncated(d):
    data = add_model().SerializeToString()
    path = os.path.join(d, "bad.onnx")
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    return path, [], ["ONNX model", "truncated"]


def case_unknown_operators(d):
    m = model([helper.make_node("FrobnicateA", ["x"], ["t"], name="frob"),
               helper.make_node("Relu", ["t"], ["u"], name="relu0"),
               helper.make_node("TwiddleB", ["u"], ["y"], name="twiddle")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["FrobnicateA", "TwiddleB"]


def case_missing_initializer(d):
    m = add_model()
    del m.graph.initializer[:]
    return save(m, d), [], ["node 'add0' (Add, opset 13)", "input 'W'",
                            "not produced by any node, graph input or initializer"]


def case_shape_mismatch_in_node(d):
    m = model([helper.make_node("Add", ["a", "b"], ["y"], name="add_mismatch")],
              [tensor_in("a", [2, 3]), tensor_in("b", [4, 5])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'add_mismatch' (Add"]


def case_shape_binding_contradicts(d):
    m = add_model()
    return save(m, d), ["--shape", "x:4x5"], ["shape mismatch", "'x'", "[4,5]", "[2,3]"]


def case_unbound_symbolic_dim(d):
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
              [tensor_in("x", ["batch", 3])], [tensor_in("y", ["batch", 3])])
    return save(m, d), [], ["input 'x' dimension 0 ('batch') is symbolic", "--shape x:"]


def case_external_data_escapes(d):
    with open(os.path.join(os.path.dirname(d), "outside.bin"), "wb") as f:
        f.write(b"\0" * 24)
    return (save(external_weight_model("../outside.bin"), d), [],
            ["initializer 'W'", "external data location '../outside.bin' escapes the model's folder"])


def case_external_data_missing(d):
    return (save(external_weight_model("weights.bin"), d), [],
            ["initializer 'W'", "external data file 'weights.bin'"])


def case_cycle(d):
    m = model([helper.make_node("Add", ["x", "c"], ["a"], name="first"),
               helper.make_node("Relu", ["a"], ["b"], name="second"),
               helper.make_node("Neg", ["b"], ["c"], name="third"),
               helper.make_node("Exp", ["c"], ["y"], name="after")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["cycle", "'first' (Add)", "'second' (Relu)", "'third' (Neg)"]


CASES = [(name[len("case_"):], fn) for name, fn in sorted(globals().items())
         if name.startswith("case_")]


def check_case(kiln, name, make):
    """Run one case; return a list of problems (empty: passed)."""
    root = tempfile.mkdtemp(prefix="kiln-bad-")
    try:
        model_dir = os.path.join(root, "model")
        out_dir = os.path.join(root, "out")
        os.mkdir(model_dir)
        os.mkdir(out_dir)
        path, args, fragments = make(model_dir)
        cmd = [kiln, "compile", path, "-o", os.path.join(out_dir, "model.o")] + args
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        problems = []
        if r.returncode != 1:
            problems.append(f"exit status {r.returncode}, expected 1")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected one message")
        for fragment in [path] + fragments:
            if fragment not in r.stderr:
                problems.append(f"stderr lacks {fragment!r}")
        left = os.listdir(out_dir)
        if left:
            problems.append(f"left behind: {', '.join(sorted(left))}")
        if problems:
            problems.append("stderr was: " + (r.stderr.strip() or "(empty)"))
        return problems
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    kiln = os.path.abspath(sys.argv[1])
    passed = failed = 0
    for name, make in CASES:
        try:
            problems = check_case(kiln, name, make)
        except Exception as e:  # a case that cannot even run is a failure, not a crash
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"PASS {name}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
