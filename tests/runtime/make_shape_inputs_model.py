#!/usr/bin/env python3
"""Write shape_inputs.onnx: TopK, HannWindow, Col2Im, STFT and AffineGrid with the inputs that
decide their shapes given at run time (tests/runtime/shape_inputs.c).

usage: make_shape_inputs_model.py OUT.onnx

  TopK        x float [2, 5], k int64 [1]            -> values [2, 3], indices int64 [2, 3]
  HannWindow  size int64 scalar                      -> window [4]
  Col2Im      cols float [1, 5, 5], block int64 [2]  -> image [1, 1, 5, 5] (image_shape constant):
              block [1, 5] and [5, 1] both fit, with different images
  STFT        signal float [1, 16, 1], step and length int64 scalars, no window
                                                     -> spectrum [1, 4, 3, 2]: length 4 with
              step 4 and length 5 with step 3 both give 4 frames of 3 bins
  AffineGrid  theta float [1, 2, 3], size int64 [4]  -> grid [1, 2, 3, 2] (size's C is free)
Any other k, size, block, step/length or grid size must make predict return KILN_E_SHAPE.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def build() -> onnx.ModelProto:
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=-1),
        helper.make_node("HannWindow", ["size"], ["window"]),
        helper.make_node("Col2Im", ["cols", "image_shape", "block"], ["image"]),
        helper.make_node("STFT", ["signal", "step", "", "length"], ["spectrum"]),
        helper.make_node("AffineGrid", ["theta", "grid_size"], ["grid"], align_corners=1),
    ]
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "shape_inputs",
        [info("x", F, [2, 5]), info("k", I64, [1]), info("size", I64, []),
         info("cols", F, [1, 5, 5]), info("block", I64, [2]),
         info("signal", F, [1, 16, 1]), info("step", I64, []), info("length", I64, []),
         info("theta", F, [1, 2, 3]), info("grid_size", I64, [4])],
        [info("values", F, [2, 3]), info("indices", I64, [2, 3]), info("window", F, [4]),
         info("image", F, [1, 1, 5, 5]), info("spectrum", F, [1, 4, 3, 2]),
         info("grid", F, [1, 2, 3, 2])],
        [numpy_helper.from_array(np.array([5, 5], np.int64), "image_shape")])
    model = helper.make_model(graph, producer_name="kiln-tests",
                              opset_imports=[helper.make_opsetid("", 20)])
    # no onnx.checker: the python3-onnx of the build machines (1.12) predates opset 18 and 20
    model.ir_version = 8
    return model


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
