#!/usr/bin/env python3
"""Write resize_pad.onnx: Resize's scales and Pad's pads given at run time (tests/runtime/resize_pad.c).

usage: make_resize_pad_model.py OUT.onnx

x float [1, 1, 2, 2] (opset 19), two nodes whose output shapes the model declares:
  resized  Resize, mode linear (half_pixel), scales a float [4] input, declared [1, 1, 4, 4]:
           scales 2 and 2.4 both give floor(2 * scale) = 4 but interpolate differently;
  padded   Pad, mode reflect, pads an int64 [8] input, declared [1, 1, 4, 5].
Values that ask for other shapes must make predict return KILN_E_SHAPE.
"""
import sys

import onnx
from onnx import TensorProto, helper


def build() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["resized"], mode="linear"),
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect"),
    ]
    graph = helper.make_graph(
        nodes, "resize_pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("pads", TensorProto.INT64, [8])],
        [helper.make_tensor_value_info("resized", TensorProto.FLOAT, [1, 1, 4, 4]),
         helper.make_tensor_value_info("padded", TensorProto.FLOAT, [1, 1, 4, 5])])
    model = helper.make_model(graph, producer_name="kiln-tests",
                              opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
