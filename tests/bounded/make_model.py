#!/usr/bin/env python3
"""The shared transformer_encoder with its sequence length made a symbolic dim.

The export baked the length 32 into the graph: its input and output shapes, the learned position
table added whole, and the Reshapes of the attention heads. This rewrites exactly those places so
that the same weights run at any length up to 32: input_ids and logits get the dim 'seq', the
position table is sliced to the input's length (Shape -> Slice, as a dynamic export writes it),
and each Reshape whose constant shape starts with 32 starts with -1 instead.

    make_model.py SHARED_MODELS_DIR OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

SEQ = 32


def main(models_dir, out):
    m = onnx.load(f"{models_dir}/transformer_encoder/model.onnx")
    g = m.graph
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        assert dims[1].dim_value == SEQ, vi.name
        dims[1].ClearField("dim_value")
        dims[1].dim_param = "seq"
    del g.value_info[:]

    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for n in g.node:
        if n.op_type == "Reshape" and n.input[1] in consts:
            attr = consts[n.input[1]].attribute[0]
            shape = numpy_helper.to_array(attr.t).copy()
            if shape[0] == SEQ:
                shape[0] = -1
                attr.t.CopyFrom(numpy_helper.from_array(shape, attr.t.name))

    def const(name, v):
        return helper.make_node("Constant", [], [name],
                                value=numpy_helper.from_array(np.array(v, dtype=np.int64)))

    extra = [
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        const("zero", [0]), const("one", [1]), const("two", [2]),
        helper.make_node("Slice", ["ids_shape", "one", "two"], ["seq_len"]),
        helper.make_node("Slice", ["pos", "zero", "seq_len", "zero"], ["pos_seq"]),
    ]
    for n in g.node:
        for i, name in enumerate(n.input):
            if name == "pos":
                n.input[i] = "pos_seq"
    nodes = extra + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
