#!/usr/bin/env python3
"""Operators over a bounded dim: small models whose dim n varies in 1..16, each compiled once by
`kiln check --shape ...1..16...` and run at n = 1, 6 and 16 (data sets of those shapes) against
numpy. They cover what the run-time value of n reaches inside kernels: loops to n, reductions
over n (a mean's 1/n), Softmax along n, a contraction over n, Concat and Pad along n (offsets
n, n + 1), a Slice of n - 1 rows, a Gather along n with index data, a Transpose
and a Flatten (a view) of a tensor holding n, CumSum and ArgMax along n, a 1-D
convolution over time whose activations hold n behind the channels, and inputs and outputs
that hold n behind a fixed dim or twice (copied in and out of the padded layout).

Usage: ops.py KILN [--sanitize address]   (tests/onnx_python.sh finds a Python with onnx)
Prints one line per case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from checks import Tally, run_check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from case_files import write_model, write_set  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64
SIZES = (1, 6, 16)
RANGE = "1..16"


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, initializers=()):
    g = helper.make_graph(nodes, "bounded", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def const(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def softmax0(x):
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def case_reductions(rng):
    """x [n, 8]: ReduceMean over n, Softmax along n, x^T x (a contraction over n)."""
    m = model([helper.make_node("ReduceMean", ["x"], ["mean"], axes=[0], keepdims=1),
               helper.make_node("Softmax", ["x"], ["soft"], axis=0),
               helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
               helper.make_node("MatMul", ["xt", "x"], ["gram"])],
              [vi("x", F, ["n", 8])],
              [vi("mean", F, [1, 8]), vi("soft", F, ["n", 8]), vi("gram", F, [8, 8])])

    def data(n):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        return [x], [x.mean(axis=0, keepdims=True), softmax0(x), x.T @ x]
    return m, ["x:" + RANGE + "x8"], data


def case_movement(rng):
    """x [n, 8]: Concat(x, x) along n, Pad along n (1 before, 2 after), every row but the
    first (Slice from 1: n - 1 rows, none at n = 1), a Flatten of x reshaped to [n, 2, 4]
    (views). (The last 3 rows would be min(n, 3) of them: not affine in n, refused.)"""
    m = model([helper.make_node("Concat", ["x", "x"], ["cat"], axis=0),
               helper.make_node("Pad", ["x", "pads"], ["pad"], mode="constant"),
               helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["tail"]),
               helper.make_node("Reshape", ["x", "shape3"], ["x3"]),
               helper.make_node("Flatten", ["x3"], ["flat"], axis=1)],
              [vi("x", F, ["n", 8])],
              [vi("cat", F, ["2n", 8]), vi("pad", F, ["n3", 8]), vi("tail", F, ["n1", 8]),
               vi("flat", F, ["n", 8])],
              [const("pads", [1, 0, 2, 0]), const("starts", [1]),
               const("ends", [2**62]), const("axes", [0]), const("shape3", [-1, 2, 4])])

    def data(n):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        return [x], [np.concatenate([x, x]), np.pad(x, ((1, 2), (0, 0))), x[1:], x]
    return m, ["x:" + RANGE + "x8"], data


def case_indexing(rng):
    """x [n, 4] and idx [n] (both n): Gather rows of a fixed table by idx, Gather of x's rows
    by idx (indices < n), CumSum and ArgMax along n."""
    table = rng.standard_normal((10, 4)).astype(np.float32)
    m = model([helper.make_node("Gather", ["table", "idx"], ["rows"], axis=0),
               helper.make_node("Gather", ["x", "idx_in_x"], ["picked"], axis=0),
               helper.make_node("CumSum", ["x", "axis0"], ["cum"]),
               helper.make_node("ArgMax", ["x"], ["arg"], axis=0, keepdims=0)],
              [vi("x", F, ["n", 4]), vi("idx", I64, ["n"]), vi("idx_in_x", I64, [3])],
              [vi("rows", F, ["n", 4]), vi("picked", F, [3, 4]), vi("cum", F, ["n", 4]),
               vi("arg", I64, [4])],
              [numpy_helper.from_array(table, "table"), const("axis0", 0)])

    def data(n):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        idx = rng.integers(0, 10, n).astype(np.int64)
        pick = rng.integers(0, n, 3).astype(np.int64)
        return [x, idx, pick], [table[idx], x[pick], np.cumsum(x, axis=0),
                                np.argmax(x, axis=0).astype(np.int64)]
    return m, ["x:" + RANGE + "x4", "idx:" + RANGE], data


def case_conv_time(rng):
    """x [1, n] (samples): a 1-D convolution over time (8 channels, kernel 3, pads 1) whose
    activations [1, 8, n] hold the dim behind the channels, read as [8, n] (a view), then
    transposed to [n, 8] and averaged over time."""
    w = rng.standard_normal((8, 1, 3)).astype(np.float32)
    m = model([helper.make_node("Unsqueeze", ["x", "ax1"], ["x3"]),
               helper.make_node("Conv", ["x3", "w"], ["c"], pads=[1, 1]),
               helper.make_node("Relu", ["c"], ["r"]),
               helper.make_node("Reshape", ["r", "shape2"], ["r2"]),
               helper.make_node("Transpose", ["r2"], ["frames"], perm=[1, 0]),
               helper.make_node("ReduceMean", ["r2"], ["mean"], axes=[1], keepdims=0)],
              [vi("x", F, [1, "n"])], [vi("frames", F, ["n", 8]), vi("mean", F, [8])],
              [numpy_helper.from_array(w, "w"), const("ax1", [1]), const("shape2", [8, -1])])

    def data(n):
        x = rng.standard_normal((1, n)).astype(np.float32)
        xp = np.pad(x[0], 1)
        c = np.stack([np.convolve(xp, w[o, 0, ::-1], mode="valid") for o in range(8)])
        r = np.maximum(c, 0).astype(np.float32)
        return [x], [r.T, r.mean(axis=1)]
    return m, ["x:1x" + RANGE], data


def case_layouts(rng):
    """x [3, n]: the dim behind a fixed dim, at the interface (copied in and out of the padded
    layout): 2x as [3, n], its transpose [n, 3], x x^T [3, 3] and x^T x [n, n] (n twice)."""
    m = model([helper.make_node("Add", ["x", "x"], ["twice"]),
               helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
               helper.make_node("MatMul", ["x", "xt"], ["small"]),
               helper.make_node("MatMul", ["xt", "x"], ["outer"])],
              [vi("x", F, [3, "n"])],
              [vi("twice", F, [3, "n"]), vi("xt", F, ["n", 3]), vi("small", F, [3, 3]),
               vi("outer", F, ["n", "n"])])

    def data(n):
        x = rng.standard_normal((3, n)).astype(np.float32)
        return [x], [2 * x, x.T, x @ x.T, x.T @ x]
    return m, ["x:3x" + RANGE], data


def case_moved_view(rng):
    """x [n, 4] transposed to [4, n] and read flat as [4n] (a Reshape: at n below the bound the
    padded rows are not contiguous, so the flat value is a dense copy of its own)."""
    m = model([helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
               helper.make_node("Reshape", ["xt", "flat"], ["y"]),
               helper.make_node("Neg", ["y"], ["z"])],
              [vi("x", F, ["n", 4])], [vi("y", F, ["n4"]), vi("z", F, ["n4"])],
              [const("flat", [-1])])

    def data(n):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        return [x], [x.T.reshape(-1), -x.T.reshape(-1)]
    return m, ["x:" + RANGE + "x4"], data


CASES = {"layouts": case_layouts, "moved_view": case_moved_view, "reductions": case_reductions, "movement": case_movement, "indexing": case_indexing,
         "conv_time": case_conv_time}


def write_sets(root, name, m, data):
    d, path = write_model(root, name, m)
    dirs = []
    for n in SIZES:
        s = os.path.join(d, f"n{n}")
        write_set(s, m, *data(n))
        dirs += ["--data", s]
    return path, dirs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--sanitize")
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="kiln-bounded-") as root:
        for name, make in CASES.items():
            m, shapes, data = make(rng)
            path, dirs = write_sets(root, name, m, data)
            args = ["--atol", "1e-5"] + dirs
            for s in shapes:
                args += ["--shape", s]
            ok = run_check(a.kiln, path, args, name, a.sanitize)
            tally.add(ok)
    tally.finish()


if __name__ == "__main__":
    main()
