#!/usr/bin/env python3
"""Write convnet.onnx: a small convolutional model for the run-time contract tests.

usage: make_convnet_model.py OUT.onnx

What the speed work of kiln rewrites, in one model big enough for its kernels to be split
across threads: padded 3x3 convolutions (halo, register blocks), a residual Add and Relus
(epilogues), a max pool, a Concat of two branches (producers writing their slices), a 1x1
convolution over 288 channels (long enough for a libxsmm micro-kernel where the target has
them), a global average pool and a Gemm; and a 1x1 convolution to 1024 channels on a 4x4 map,
whose 1.2 MB of weights outgrow L2 (the tile pass gives it a prefetch of the next panel, and the
parallel entry one slice per thread). Seeded weights; values stay O(1).
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_weights(rng, m, c, k):
    return (rng.standard_normal((m, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = {
        "w1": conv_weights(rng, 32, 3, 3), "b1": rng.standard_normal(32).astype(np.float32) * 0.1,
        "w2": conv_weights(rng, 32, 32, 3), "b2": rng.standard_normal(32).astype(np.float32) * 0.1,
        "wa": conv_weights(rng, 144, 32, 1), "wb": conv_weights(rng, 144, 32, 3),
        "w3": conv_weights(rng, 64, 288, 1), "b3": rng.standard_normal(64).astype(np.float32) * 0.1,
        "ww": conv_weights(rng, 1024, 288, 1),
        "wf": (rng.standard_normal((10, 64 + 1024)) / 32).astype(np.float32),
        "bf": rng.standard_normal(10).astype(np.float32) * 0.1,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["res"]),
        helper.make_node("Relu", ["res"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "wa"], ["ba"], name="branch_a"),
        helper.make_node("Conv", ["p", "wb"], ["bb"], name="branch_b", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["ba", "bb"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3", "b3"], ["c3"], name="conv3"),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("MaxPool", ["cat"], ["p2"], kernel_shape=[5, 5], strides=[5, 5]),
        helper.make_node("Conv", ["p2", "ww"], ["cw"], name="wide"),
        helper.make_node("Relu", ["cw"], ["rw"]),
        helper.make_node("GlobalAveragePool", ["rw"], ["gw"]),
        helper.make_node("Concat", ["g", "gw"], ["gg"], axis=1),
        helper.make_node("Flatten", ["gg"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="classifier", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 40, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, producer_name="kiln-tests", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_convnet_model.py OUT.onnx", file=sys.stderr)
        return 2
    onnx.save(build(), sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
