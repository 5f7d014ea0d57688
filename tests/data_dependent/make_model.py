#!/usr/bin/env python3
"""A model with two outputs whose lengths depend on the data (tests/data_dependent).

    nz = NonZero(x)                   x: float [3, 4]   nz: int64 [2, 0..12]
    cz = Compress(x, keep, axis=1)    keep: bool [4]    cz: float [3, 0..4]

    make_model.py OUT.onnx
"""
import sys

import onnx
from onnx import TensorProto, helper


def main(out):
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero0"),
             helper.make_node("Compress", ["x", "keep"], ["cz"], axis=1, name="compress0")]
    graph = helper.make_graph(
        nodes, "data_dependent",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
         helper.make_tensor_value_info("keep", TensorProto.BOOL, [4])],
        [helper.make_tensor_value_info("nz", TensorProto.INT64, [2, "n"]),
         helper.make_tensor_value_info("cz", TensorProto.FLOAT, [3, "k"])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="kiln-tests")
    onnx.save(m, out)


if __name__ == "__main__":
    main(sys.argv[1])
