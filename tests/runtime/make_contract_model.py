#!/usr/bin/env python3
"""Write mathmix.onnx: a tiny model for the run-time contract tests.

usage: make_contract_model.py OUT.onnx

The digits example covers convolutions; this model covers what would tempt a back end to call
libm or a helper routine: Tanh, Sigmoid, Erf, Exp, Log, Sqrt, Pow and Softmax, behind a Gemm with
seeded weights. Its values stay finite for any input in [-1, 1]: Exp's output is positive before
Sqrt and Div, and Log reads 1 + sigmoid(h) > 1 before Pow.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTH = 16


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    bias = rng.standard_normal(WIDTH).astype(np.float32) * np.float32(0.1)
    initializers = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(bias, "B"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(1.5, np.float32), "exponent"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="dense", transB=1),
        helper.make_node("Tanh", ["h"], ["t"]),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("Erf", ["t"], ["e"]),
        helper.make_node("Exp", ["e"], ["p"]),
        helper.make_node("Add", ["s", "one"], ["s1"]),
        helper.make_node("Log", ["s1"], ["q"]),
        helper.make_node("Sqrt", ["p"], ["r"]),
        helper.make_node("Pow", ["q", "exponent"], ["u"]),
        helper.make_node("Mul", ["r", "u"], ["ru"]),
        helper.make_node("Div", ["h", "p"], ["hp"]),
        helper.make_node("Add", ["ru", "hp"], ["v"]),
        helper.make_node("Softmax", ["v"], ["y"], name="probabilities", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mathmix",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, WIDTH])],
        initializer=initializers, doc_string="run-time contract test model")
    model = helper.make_model(graph, producer_name="kiln-tests", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    model.doc_string = "elementwise math behind a Gemm, for tests/runtime"
    onnx.checker.check_model(model)
    return model


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_contract_model.py OUT.onnx", file=sys.stderr)
        return 2
    onnx.save(build(), sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
