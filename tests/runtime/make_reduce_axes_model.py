#!/usr/bin/env python3
"""Write reduce_axes.onnx: ReduceSum with its axes given at run time (tests/runtime/reduce_axes.c).

usage: make_reduce_axes_model.py OUT.onnx

x float [3, 2, 2]; two ReduceSum nodes (opset 13, axes an int64 [1] input each):
  kept    keepdims 1, declared [3, 1, 2]: only axis 1 (or -2) gives that shape;
  dropped keepdims 0, declared [3, 2]:    axis 1 or axis 2 (or -2, -1), with different values.
Any other axes must make predict return KILN_E_SHAPE.
"""
import sys

import onnx
from onnx import TensorProto, helper


def build() -> onnx.ModelProto:
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes_kept"], ["kept"], keepdims=1),
        helper.make_node("ReduceSum", ["x", "axes_dropped"], ["dropped"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "reduce_axes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 2, 2]),
         helper.make_tensor_value_info("axes_kept", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("axes_dropped", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("kept", TensorProto.FLOAT, [3, 1, 2]),
         helper.make_tensor_value_info("dropped", TensorProto.FLOAT, [3, 2])])
    model = helper.make_model(graph, producer_name="kiln-tests",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
