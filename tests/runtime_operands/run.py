#!/usr/bin/env python3
"""Operands given at run time against the same operands as constants: Resize and Pad.

Usage: run.py KILN [--seed N] [--cases N]   (tests/onnx_python.sh finds a Python with onnx)

For each case (drawn from a fixed seed) the script writes two models of one node with the same
attributes and declared output shape: one with scales / sizes / roi (Resize) or pads / axes
(Pad) as initializers, which kiln turns into compile-time tables and index offsets, and one
with them as graph inputs, which takes the run-time path (ops/resize.c "operands given at run
time", ops/movement.c). Both are compiled to shared objects, run on the same x through ctypes,
and must give the same output (Resize within 1e-5, Pad bit for bit). The draws cover every mode,
coordinate_transformation_mode, nearest_mode, keep_aspect_ratio_policy, roi, exclude_outside,
antialias, negative and named-axis pads. Resize cases that kiln refuses by design (linear or cubic with a
scale other than 1, or a partial roi, on an axis the declared shape keeps: KILN_E_SHAPE, README
"Shapes given at run time") must return KILN_E_SHAPE and are counted apart.
Prints one line per failing case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import ctypes
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

KILN_E_SHAPE = -4


def make_model(node, inputs, inits, y_shape):
    graph = helper.make_graph([node], "operands", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 8
    return model


def operand_inputs(operands, at_run_time):
    """(name, values, numpy dtype) -> graph inputs or initializers, and the node's input names."""
    inputs, inits, feeds = [], [], []
    for name, values, dtype in operands:
        if values is None:
            continue
        array = np.array(values, dtype)
        if at_run_time:
            elem = TensorProto.INT64 if dtype == np.int64 else TensorProto.FLOAT
            inputs.append(helper.make_tensor_value_info(name, elem, [len(values)]))
            feeds.append(array)
        else:
            inits.append(numpy_helper.from_array(array, name))
    return inputs, inits, feeds


class Runner:
    def __init__(self, kiln, folder):
        self.kiln, self.folder, self.count = kiln, folder, 0

    def compile(self, model):
        """Compiles to a shared object with a fresh name (dlopen keeps a loaded path)."""
        self.count += 1
        name = "m%d" % self.count
        base = os.path.join(self.folder, name)
        onnx.save(model, base + ".onnx")
        r = subprocess.run([self.kiln, "compile", base + ".onnx", "-o", base + ".so",
                            "--name", name], capture_output=True, text=True)
        if r.returncode:
            return None, r.stderr.strip()
        return (name, base), None

    def output_shape(self, compiled):
        header = open(compiled[1] + ".h").read()
        found = re.search(r'output 0 "y": \w+ \[([0-9,]*)\]', header)
        return [int(v) for v in found.group(1).split(",") if v]

    def predict(self, compiled, feeds, y_shape):
        name, base = compiled
        header = open(base + ".h").read()
        ws_size = int(re.search(r"#define %s_WORKSPACE_SIZE\s+(\d+)" % name.upper(),
                                header).group(1))
        lib = ctypes.CDLL(base + ".so")
        y = np.zeros(y_shape, np.float32)
        workspace = np.zeros(ws_size + 128, np.uint8)
        aligned = (workspace.ctypes.data + 63) // 64 * 64
        args = [np.ascontiguousarray(f).ctypes.data_as(ctypes.c_void_p) for f in feeds]
        args += [y.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(aligned)]
        return getattr(lib, name + "_predict")(*args), y


def resize_case(rng):
    mode = rng.choice(["nearest", "linear", "cubic"])
    coord = rng.choice(["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                        "align_corners", "asymmetric", "tf_crop_and_resize"])
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if mode == "cubic":
        attrs.update(cubic_coeff_a=rng.choice([-0.5, -0.75]), exclude_outside=rng.choice([0, 1]))
    if mode != "nearest" and rng.random() < 0.4:
        attrs["antialias"] = 1
    if mode == "nearest":
        attrs["nearest_mode"] = rng.choice(["round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil"])
    if coord == "tf_crop_and_resize":
        attrs["extrapolation_value"] = rng.choice([0.0, 10.0])
    x_shape = [1, 2, rng.randint(1, 6), rng.randint(1, 6)]
    roi = scales = sizes = None
    if coord == "tf_crop_and_resize":
        roi = [0, 0, rng.uniform(-0.2, 0.5), rng.uniform(-0.2, 0.5),
               1, 1, rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2)]
    # (antialias with tf_crop_and_resize and run-time scales is refused: sizes there)
    if rng.random() < 0.4 or (coord == "tf_crop_and_resize" and attrs.get("antialias")):
        sizes = [1, 2, rng.randint(1, 9), rng.randint(1, 9)]
        attrs["keep_aspect_ratio_policy"] = rng.choice(["stretch", "not_larger", "not_smaller"])
    else:
        scales = [1, 1, round(rng.uniform(0.3, 3), 2), round(rng.uniform(0.3, 3), 2)]
    operands = [("roi", roi, np.float32), ("scales", scales, np.float32),
                ("sizes", sizes, np.int64)]
    return attrs, x_shape, operands


def refused_by_design(attrs, x_shape, y_shape, operands):
    """Linear/cubic with a kept axis whose scale is not 1 or whose roi is partial."""
    if attrs["mode"] == "nearest":
        return False
    roi, scales = operands[0][1], operands[1][1]
    if operands[2][1] is not None and attrs["keep_aspect_ratio_policy"] != "stretch":
        return False  # every listed axis is resized under the other policies
    for i in range(4):
        if x_shape[i] != y_shape[i]:
            continue
        if scales is not None and np.float32(scales[i]) != 1:
            return True
        if roi is not None and (np.float32(roi[i]) != 0 or np.float32(roi[i + 4]) != 1):
            return True
    return False


def pad_case(rng):
    mode = rng.choice(["constant", "reflect", "edge", "wrap"])
    x_shape = [rng.randint(1, 4) for _ in range(3)]
    axes = None
    if rng.random() < 0.5:
        axes = rng.sample(rng.choice([[0, 1, 2], [-1, -2, -3], [0, -1, 1]]), rng.randint(1, 3))
    count = len(axes) if axes is not None else 3
    pads = [rng.randint(-1, 4) for _ in range(2 * count)]
    return mode, x_shape, pads, axes


def check_resize(runner, rng):
    attrs, x_shape, operands = resize_case(rng)
    names = ["x"] + [name if values is not None else "" for name, values, _ in operands]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("Resize", names, ["y"], **attrs)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    _, inits, _ = operand_inputs(operands, False)
    constant, error = runner.compile(make_model(node, [x_info], inits, None))
    if error:
        return "constants do not compile: " + error
    y_shape = runner.output_shape(constant)
    inputs, _, feeds = operand_inputs(operands, True)
    run_time, error = runner.compile(make_model(node, [x_info] + inputs, [], y_shape))
    if error:
        return "run-time operands do not compile: " + error
    x = np.random.default_rng(rng.randrange(2**32)).random(x_shape, dtype=np.float32)
    rc_c, want = runner.predict(constant, [x], y_shape)
    rc_r, got = runner.predict(run_time, [x] + feeds, y_shape)
    if refused_by_design(attrs, x_shape, y_shape, operands):
        return "refused" if rc_r == KILN_E_SHAPE else "expected KILN_E_SHAPE, got %d" % rc_r
    if rc_c != 0 or rc_r != 0:
        return "predict returned %d (constants) and %d (run time)" % (rc_c, rc_r)
    if not np.allclose(want, got, atol=1e-5):
        return "outputs differ by %g" % float(np.abs(want - got).max())
    return None


def check_pad(runner, rng):
    mode, x_shape, pads, axes = pad_case(rng)
    count = len(pads) // 2
    y_shape = list(x_shape)
    for k in range(count):
        axis = (axes[k] if axes is not None else k) % 3
        y_shape[axis] += pads[k] + pads[k + count]
    if min(y_shape) < 1:
        return "skip"
    operands = [("pads", pads, np.int64), ("axes", axes, np.int64)]
    names = ["x", "pads", "cv" if mode == "constant" else ""] + (["axes"] if axes else [])
    while names[-1] == "":
        names.pop()
    node = helper.make_node("Pad", names, ["y"], mode=mode)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    cv = [numpy_helper.from_array(np.array([2.5], np.float32), "cv")] if mode == "constant" else []
    _, inits, _ = operand_inputs(operands, False)
    constant, error = runner.compile(make_model(node, [x_info], inits + cv, y_shape))
    if error:
        return "constants do not compile: " + error
    inputs, _, feeds = operand_inputs(operands, True)
    run_time, error = runner.compile(make_model(node, [x_info] + inputs, cv, y_shape))
    if error:
        return "run-time operands do not compile: " + error
    x = np.arange(np.prod(x_shape), dtype=np.float32).reshape(x_shape)
    rc_c, want = runner.predict(constant, [x], y_shape)
    rc_r, got = runner.predict(run_time, [x] + feeds, y_shape)
    if rc_c != 0 or rc_r != 0:
        return "predict returned %d (constants) and %d (run time)" % (rc_c, rc_r)
    if not np.array_equal(want, got):
        return "outputs differ"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--cases", type=int, default=40)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    folder = tempfile.mkdtemp(prefix="kiln-operands-")
    runner = Runner(os.path.abspath(args.kiln), folder)
    passed = failed = refused = 0
    try:
        for op, check in (("Resize", check_resize), ("Pad", check_pad)):
            for i in range(args.cases):
                outcome = check(runner, rng)
                if outcome == "skip":
                    continue
                if outcome == "refused":
                    refused += 1
                elif outcome:
                    failed += 1
                    print("FAIL %s case %d: %s" % (op, i, outcome))
                else:
                    passed += 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("%d passed, %d failed (%d refused by design, as expected)" % (passed, failed, refused))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
