#!/usr/bin/env python3
"""Write gathers.onnx: index data that arrives with the inputs (tests/runtime/index_check.c).

usage: make_gather_model.py OUT.onnx

table is a constant float [5, 3] with table[r][c] = 10 r + c. Three index inputs, one per way
of reading by index:
  rows     int64 [2]     Gather(table, rows, axis 0)          -> picked   float [2, 3]
  cells    int64 [2, 2]  GatherND(table, cells)                -> cells_out float [2]
  targets  int32 [1, 3]  ScatterElements(table, targets, 100, axis 0) -> scattered float [5, 3]
  codes    int64 [3]     OneHotEncoder(cats 4 and 8, zeros 0)  -> onehot float [3, 2]
An index outside [-dim, dim), or a code of no category, must make predict return
KILN_E_INDEX_OUT_OF_RANGE.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    table = (10 * np.arange(5)[:, None] + np.arange(3)[None, :]).astype(np.float32)
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.full((1, 3), 100, np.float32), "hundreds"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "rows"], ["picked"], axis=0),
        helper.make_node("GatherND", ["table", "cells"], ["cells_out"]),
        helper.make_node("ScatterElements", ["table", "targets", "hundreds"], ["scattered"],
                         axis=0),
        helper.make_node("OneHotEncoder", ["codes"], ["onehot"], domain="ai.onnx.ml",
                         cats_int64s=[4, 8], zeros=0),
    ]
    graph = helper.make_graph(
        nodes, "gathers",
        [helper.make_tensor_value_info("rows", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("cells", TensorProto.INT64, [2, 2]),
         helper.make_tensor_value_info("targets", TensorProto.INT32, [1, 3]),
         helper.make_tensor_value_info("codes", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("picked", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("cells_out", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("scattered", TensorProto.FLOAT, [5, 3]),
         helper.make_tensor_value_info("onehot", TensorProto.FLOAT, [3, 2])],
        initializers)
    model = helper.make_model(graph, producer_name="kiln-tests",
                              opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
