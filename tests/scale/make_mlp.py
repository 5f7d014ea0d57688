#!/usr/bin/env python3
"""Write a synthetic MLP with large weights in external data, and its reference output.

usage: make_mlp.py OUT_DIR [--layers N] [--width W] [--batch B]

OUT_DIR/model.onnx holds N x (Gemm W x W with bias, Relu) with every weight in one external
file OUT_DIR/weights.bin (offsets per tensor, as onnx's external-data writer lays them out);
OUT_DIR/test_data_set_0/ holds a seeded input and the output numpy computes, in float64 then
rounded, so `kiln check OUT_DIR/model.onnx` compares against it; the same input and output
also raw (OUT_DIR/input.f32, OUT_DIR/reference.f32) for a C program that links the object
(tests/scale/link_check.c). The default (10 layers of
3072) is 378 MB of weights; --layers 9 --width 8192 passes 2 GiB. Never committed: CI makes it.

Weights are scaled so activations stay O(1) through any depth (He initialization, halved).
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_tensor_pb(path, name, array):
    t = numpy_helper.from_array(array, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--width", type=int, default=3072)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    n, w, b = args.layers, args.width, args.batch
    os.makedirs(os.path.join(args.out_dir, "test_data_set_0"), exist_ok=True)
    rng = np.random.default_rng(7)

    weights_name = "weights.bin"
    inits, nodes = [], []
    x = rng.standard_normal((b, w)).astype(np.float32)
    ref = x.astype(np.float64)
    offset = 0
    with open(os.path.join(args.out_dir, weights_name), "wb") as wf:
        for i in range(n):
            # one layer at a time: a 2 GiB model never needs 2 GiB of Python memory at once
            wt = (rng.standard_normal((w, w), dtype=np.float32) * np.float32(np.sqrt(1.0 / w)))
            bias = (rng.standard_normal(w, dtype=np.float32) * np.float32(0.1))
            for name, arr in ((f"w{i}", wt), (f"b{i}", bias)):
                raw = arr.tobytes()
                wf.write(raw)
                t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=arr.shape)
                t.data_location = TensorProto.EXTERNAL
                for k, v in (("location", weights_name), ("offset", str(offset)),
                             ("length", str(len(raw)))):
                    e = t.external_data.add()
                    e.key, e.value = k, v
                inits.append(t)
                offset += len(raw)
            src = "x" if i == 0 else f"h{i - 1}"
            nodes.append(helper.make_node("Gemm", [src, f"w{i}", f"b{i}"], [f"g{i}"],
                                          name=f"gemm{i}", transB=1))
            nodes.append(helper.make_node("Relu", [f"g{i}"], [f"h{i}" if i < n - 1 else "y"],
                                          name=f"relu{i}"))
            ref = np.maximum(ref @ wt.astype(np.float64).T + bias.astype(np.float64), 0.0)
            del wt
    graph = helper.make_graph(
        nodes, "mlp_large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [b, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, w])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with open(os.path.join(args.out_dir, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    write_tensor_pb(os.path.join(args.out_dir, "test_data_set_0", "input_0.pb"), "x", x)
    write_tensor_pb(os.path.join(args.out_dir, "test_data_set_0", "output_0.pb"), "y",
                    ref.astype(np.float32))
    x.tofile(os.path.join(args.out_dir, "input.f32"))
    ref.astype(np.float32).tofile(os.path.join(args.out_dir, "reference.f32"))
    print(f"{args.out_dir}: {n} layers of {w}x{w}, {offset / 1e6:.0f} MB of weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
