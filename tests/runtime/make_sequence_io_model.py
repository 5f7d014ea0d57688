#!/usr/bin/env python3
"""Write sequence_io.onnx: sequences and optionals at the graph interface (sequence_io.c).

usage: make_sequence_io_model.py OUT.onnx

Inputs: s, a sequence of float [2] tensors (compiled with --sequence s:3), x float [2], and o,
an optional float [2] (compiled with --optional o:present). Outputs:
  y      sequence: SequenceInsert(s, x + OptionalGetElement(o), position 1)  (4 tensors)
  total  float [6]: ConcatFromSequence(s, axis 0)
  none   optional float [2], empty: Optional() with no input                  (no tensor)
"""
import sys

import onnx
from onnx import TensorProto, helper

F = TensorProto.FLOAT


def build() -> onnx.ModelProto:
    elem = helper.make_tensor_type_proto(F, [2])
    seq = helper.make_sequence_type_proto(elem)
    opt = helper.make_optional_type_proto(elem)
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    nodes = [
        helper.make_node("OptionalGetElement", ["o"], ["o_value"]),
        helper.make_node("Add", ["x", "o_value"], ["sum"]),
        helper.make_node("SequenceInsert", ["s", "sum", "one"], ["y"]),
        helper.make_node("ConcatFromSequence", ["s"], ["total"], axis=0),
        helper.make_node("Optional", [], ["none"], type=elem),
    ]
    graph = helper.make_graph(
        nodes, "sequence_io",
        [helper.make_value_info("s", seq), helper.make_tensor_value_info("x", F, [2]),
         helper.make_value_info("o", opt)],
        [helper.make_value_info("y", seq), helper.make_tensor_value_info("total", F, [6]),
         helper.make_value_info("none", opt)],
        [one])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                             producer_name="kiln-tests")


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
