#!/usr/bin/env python3
"""Bad inputs: every kind of broken model gets one clear error and no output.

Usage: run.py KILN   (KILN: the kiln binary)

Each case writes a broken model (with python3-onnx's helpers) into a fresh temporary folder,
runs `kiln compile BAD.onnx -o OUT/model.o` and checks that kiln
  - exits with status 1,
  - prints on stderr one message line (several errors of one kind share the line when the
    compiler gathers them, e.g. all unsupported operators) naming the file and, where the
    fault lies in a node, the node,
  - leaves nothing behind in OUT (no object, no header).
The regression inputs the fuzz targets found (fuzz/expected.txt) run the same way; one that is
a valid model (expected "compiles") must compile instead.
Prints one line per case and "N passed, M failed"; exits 1 if any case fails.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="kiln-bad-inputs")


def tensor_in(name, shape):
    return helper.make_tensor_value_info(name, F, shape)


def add_model():
    """A valid model: y = Relu(x + W), the base that most cases break."""
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    return model([helper.make_node("Add", ["x", "W"], ["s"], name="add0"),
                  helper.make_node("Relu", ["s"], ["y"], name="relu0")],
                 [tensor_in("x", [2, 3])], [tensor_in("y", [2, 3])], [w])


def save(m, folder):
    path = os.path.join(folder, "bad.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path


def external_weight_model(location):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    m = add_model()
    del m.graph.initializer[:]
    m.graph.initializer.append(w)
    return m


# ---- the cases: each returns (model path, extra kiln arguments, fragments stderr must hold) --

def case_not_protobuf(d):
    path = os.path.join(d, "bad.onnx")
    with open(path, "wb") as f:
        f.write(b"GIF89a this is an image, not a model \xff\xfe\xfd" * 10)
    return path, [], ["not an ONNX model"]


def case_truncated(d):
    data = add_model().SerializeToString()
    path = os.path.join(d, "bad.onnx")
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    return path, [], ["ONNX model", "truncated"]


def case_unknown_operators(d):
    m = model([helper.make_node("FrobnicateA", ["x"], ["t"], name="frob"),
               helper.make_node("Relu", ["t"], ["u"], name="relu0"),
               helper.make_node("TwiddleB", ["u"], ["y"], name="twiddle")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["FrobnicateA", "TwiddleB"]


def case_missing_initializer(d):
    m = add_model()
    del m.graph.initializer[:]
    return save(m, d), [], ["node 'add0' (Add, opset 13)", "input 'W'",
                            "not produced by any node, graph input or initializer"]


def case_shape_mismatch_in_node(d):
    m = model([helper.make_node("Add", ["a", "b"], ["y"], name="add_mismatch")],
              [tensor_in("a", [2, 3]), tensor_in("b", [4, 5])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'add_mismatch' (Add"]


def case_shape_binding_contradicts(d):
    m = add_model()
    return save(m, d), ["--shape", "x:4x5"], ["shape mismatch", "'x'", "[4,5]", "[2,3]"]


def case_bounded_range_too_small(d):
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
              [tensor_in("x", ["n", 3])], [tensor_in("y", ["n", 3])])
    return save(m, d), ["--shape", "x:1..3x3"], ["range 1..3 of x[0] is too small",
                                                  "one object per size"]


def case_bounded_two_ranges(d):
    m = model([helper.make_node("Relu", ["a"], ["y"], name="relu0"),
               helper.make_node("Relu", ["b"], ["z"], name="relu1")],
              [tensor_in("a", ["n", 3]), tensor_in("b", ["m", 3])],
              [tensor_in("y", None), tensor_in("z", None)])
    return save(m, d), ["--shape", "a:1..8x3", "--shape", "b:1..9x3"], [
        "bounded dims a[0] (1..8) and b[0] (1..9) differ", "one bounded dim per model"]


def case_bounded_dim_fixed_by_reshape(d):
    shape = numpy_helper.from_array(np.array([8, 3], np.int64), "shape")
    m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_fixed")],
              [tensor_in("x", ["n", 3])], [tensor_in("y", None)], [shape])
    return save(m, d), ["--shape", "x:1..8x3"], [
        "bounded dim x[0]: the model does not compile when it is 7", "node 'reshape_fixed'"]


def case_bounded_slice_clamps(d):
    # the last 3 rows: min(n, 3) of them, which no affine function of n gives
    consts = [numpy_helper.from_array(np.array(v, np.int64), k)
              for k, v in (("starts", [-3]), ("ends", [2**62]), ("axes", [0]))]
    m = model([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="tail")],
              [tensor_in("x", ["n", 3])], [tensor_in("y", None)], consts)
    return save(m, d), ["--shape", "x:1..16x3"], [
        "bounded dim x[0]: the shape of output 'y' changes with the dim's value"]


def case_unbound_symbolic_dim(d):
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
              [tensor_in("x", ["batch", 3])], [tensor_in("y", ["batch", 3])])
    return save(m, d), [], ["input 'x' dimension 0 ('batch') is symbolic", "--shape x:"]


def case_external_data_escapes(d):
    with open(os.path.join(os.path.dirname(d), "outside.bin"), "wb") as f:
        f.write(b"\0" * 24)
    return (save(external_weight_model("../outside.bin"), d), [],
            ["initializer 'W'", "external data location '../outside.bin' escapes the model's folder"])


def case_external_data_missing(d):
    return (save(external_weight_model("weights.bin"), d), [],
            ["initializer 'W'", "external data file 'weights.bin'"])


def case_cycle(d):
    m = model([helper.make_node("Add", ["x", "c"], ["a"], name="first"),
               helper.make_node("Relu", ["a"], ["b"], name="second"),
               helper.make_node("Neg", ["b"], ["c"], name="third"),
               helper.make_node("Exp", ["c"], ["y"], name="after")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["cycle", "'first' (Add)", "'second' (Relu)", "'third' (Neg)"]


# ---- adversarial sizes (issue 12): one clear message for numbers no model should hold ----

I64_MAX = 2**63 - 1


def relu_model(shape, dtype=F):
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
                 [helper.make_tensor_value_info("x", dtype, shape)],
                 [helper.make_tensor_value_info("y", dtype, shape)])


def case_size_dim_near_int64_max(d):
    return save(relu_model([I64_MAX]), d), [], ["input 'x' is too large", "needs more than"]


def case_size_bytes_overflow(d):
    # 2^62 elements fit int64; 2^62 * 4 bytes do not
    return save(relu_model([2**31, 2**31]), d), [], ["input 'x' is too large",
                                                     "[2147483648,2147483648]"]


def case_size_count_overflow(d):
    # the element count itself overflows int64
    return save(relu_model([2**32, 2**32, 2**32]), d), [], ["input 'x' is too large"]


def case_size_inferred_output_overflow(d):
    # each input fits; their broadcast (the output) does not
    m = model([helper.make_node("Add", ["a", "b"], ["y"], name="add_big")],
              [tensor_in("a", [2**30, 1]), tensor_in("b", [1, 2**30])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'add_big' (Add", "output 'y' is too large"]


def case_size_tile_overflow(d):
    reps = numpy_helper.from_array(np.array([I64_MAX, 2], np.int64), "reps")
    m = model([helper.make_node("Tile", ["x", "reps"], ["y"], name="tile_big")],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)], [reps])
    return save(m, d), [], ["node 'tile_big' (Tile", "too large"]


def case_size_workspace_too_large(d):
    # two contractions' outputs of 0.75 TiB each, alive at once (each read by a reduction after
    # both are made): every tensor fits, the workspace does not
    w = numpy_helper.from_array(np.ones((1, 3 * 2**17), np.float32), "W")
    m = model([helper.make_node("MatMul", ["x1", "W"], ["a"], name="mm1"),
               helper.make_node("MatMul", ["x2", "W"], ["b"], name="mm2"),
               helper.make_node("ReduceSum", ["a"], ["y1"], name="sum1", keepdims=0),
               helper.make_node("ReduceSum", ["b"], ["y2"], name="sum2", keepdims=0)],
              [tensor_in("x1", [2**19, 1]), tensor_in("x2", [2**19, 1])],
              [tensor_in("y1", []), tensor_in("y2", [])], [w])
    return save(m, d), [], ["workspace would need more than 1099511627776 bytes"]


def case_size_dropout_training_table(d):
    # training mode's mask is drawn at compile time, one float64 per element: 2^26 elements
    # would be 512 MiB, past the 256 MiB kiln builds for one constant
    train = numpy_helper.from_array(np.array(True), "train")
    m = model([helper.make_node("Dropout", ["x", "", "train"], ["y"], name="drop0")],
              [tensor_in("x", [2**13, 2**13])], [tensor_in("y", [2**13, 2**13])], [train])
    return save(m, d), [], ["node 'drop0' (Dropout", "would exceed 268435456 bytes"]


def case_size_random_normal_table(d):
    # the random generators' draws are made at compile time into a constant of the output's
    # type: 2^29 float32 elements would be 2 GiB, past the 256 MiB kiln builds for one constant
    m = model([helper.make_node("RandomNormal", [], ["y"], name="normal0", shape=[2**15, 2**14],
                                seed=1.0)],
              [], [tensor_in("y", [2**15, 2**14])], opset=22)
    return save(m, d), [], ["node 'normal0' (RandomNormal", "536870912 elements",
                            "would exceed 268435456 bytes"]


def case_random_seed_out_of_range(d):
    # numpy's RandomState takes seeds 0 to 2^32 - 1 (int(seed) of the FLOAT attribute)
    m = model([helper.make_node("RandomUniformLike", ["x"], ["y"], name="uniform0",
                                seed=-2.0)],
              [tensor_in("x", [2, 3])], [tensor_in("y", [2, 3])], opset=22)
    return save(m, d), [], ["node 'uniform0' (RandomUniformLike", "seed -2 is out of range"]


def case_random_unsupported_dtype(d):
    # the generators draw floating-point numbers only: dtype int32 is not a type they give
    m = model([helper.make_node("RandomUniform", [], ["y"], name="uniform_int", shape=[4],
                                dtype=TensorProto.INT32)],
              [], [helper.make_tensor_value_info("y", TensorProto.INT32, [4])], opset=22)
    return save(m, d), [], ["node 'uniform_int' (RandomUniform", "output type int32 (dtype 6) "
                            "is not supported"]


def case_multinomial_unsupported_dtype(d):
    m = model([helper.make_node("Multinomial", ["x"], ["y"], name="multi0", sample_size=3,
                                dtype=TensorProto.FLOAT)],
              [tensor_in("x", [2, 5])], [tensor_in("y", [2, 3])], opset=22)
    return save(m, d), [], ["node 'multi0' (Multinomial", "int32 or int64"]


def case_size_binding_too_large(d):
    # --shape binds a symbolic dim to a size past what kiln compiles
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
              [tensor_in("x", ["batch", 1024])], [tensor_in("y", ["batch", 1024])])
    return save(m, d), ["--shape", f"x:{2**40}x1024"], ["input 'x' is too large",
                                                          "[1099511627776,1024]"]


def case_size_rank_9_input(d):
    return save(relu_model([1] * 9), d), [], ["input 'x' has rank 9", "at most 8"]


def case_size_rank_9_initializer(d):
    w = numpy_helper.from_array(np.ones([1] * 9, np.float32), "W")
    m = model([helper.make_node("Add", ["x", "W"], ["y"], name="add0")],
              [tensor_in("x", [1])], [tensor_in("y", None)], [w])
    return save(m, d), [], ["initializer 'W' has rank 9", "at most 8"]


def case_size_rank_9_reshape(d):
    shape = numpy_helper.from_array(np.ones(9, np.int64), "shape")
    m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape9")],
              [tensor_in("x", [1])], [tensor_in("y", None)], [shape])
    return save(m, d), [], ["node 'reshape9' (Reshape", "rank 9"]


def case_size_negative_input_dim(d):
    return save(relu_model([2, -5]), d), [], ["input 'x' has a negative dimension (-5"]


def case_size_negative_initializer_dim(d):
    w = TensorProto(name="W", data_type=F, dims=[-2, 3])
    m = model([helper.make_node("Add", ["x", "W"], ["y"], name="add0")],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)], [w])
    return save(m, d), [], ["initializer 'W' has a negative dimension"]


def case_size_negative_reshape_dim(d):
    shape = numpy_helper.from_array(np.array([2, -3], np.int64), "shape")
    m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_neg")],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)], [shape])
    return save(m, d), [], ["node 'reshape_neg' (Reshape", "-3"]


def case_gather_nd_constant_index_out_of_range(d):
    cells = numpy_helper.from_array(np.array([[0, 3]], np.int64), "cells")
    m = model([helper.make_node("GatherND", ["x", "cells"], ["y"], name="gnd_bad")],
              [tensor_in("x", [2, 3])], [tensor_in("y", [1])], [cells])
    return save(m, d), [], ["node 'gnd_bad' (GatherND", "index 3", "out of range [-3, 3)"]


def case_size_negative_constant_of_shape(d):
    shape = numpy_helper.from_array(np.array([4, -1], np.int64), "shape")
    m = model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="cos_neg")],
              [], [tensor_in("y", None)], [shape])
    return save(m, d), [], ["node 'cos_neg' (ConstantOfShape", "negative"]


def conv_model(name="conv0", **attrs):
    w = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "W")
    return model([helper.make_node("Conv", ["x", "W"], ["y"], name=name, **attrs)],
                 [tensor_in("x", [1, 2, 8, 8])], [tensor_in("y", None)], [w])


def case_attr_huge_pads(d):
    m = conv_model(pads=[0, 0, 2**62, 0])
    return save(m, d), [], ["node 'conv0' (Conv", "pads[2] = 4611686018427387904", "out of range"]


def case_attr_zero_stride(d):
    return save(conv_model(strides=[1, 0]), d), [], ["node 'conv0' (Conv", "strides[1] = 0",
                                                     ">= 1"]


def case_attr_huge_dilation(d):
    m = conv_model(dilations=[2**40, 2**40])
    return save(m, d), [], ["node 'conv0' (Conv", "too large"]


def case_attr_huge_kernel_shape(d):
    m = model([helper.make_node("MaxPool", ["x"], ["y"], name="pool0",
                                kernel_shape=[2**62, 2])],
              [tensor_in("x", [1, 2, 8, 8])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'pool0' (MaxPool", "kernel_shape[0]", "out of range"]


def case_attr_zero_kernel_shape(d):
    m = model([helper.make_node("AveragePool", ["x"], ["y"], name="pool0", kernel_shape=[0, 2])],
              [tensor_in("x", [1, 2, 8, 8])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'pool0' (AveragePool", "kernel_shape[0] = 0", ">= 1"]


def case_attr_group_zero(d):
    return save(conv_model(group=0), d), [], ["node 'conv0' (Conv", "group"]


def case_attr_group_huge(d):
    return save(conv_model(group=I64_MAX), d), [], ["node 'conv0' (Conv", "group"]


def case_attr_axis_out_of_range(d):
    m = model([helper.make_node("Softmax", ["x"], ["y"], name="softmax0", axis=I64_MAX)],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'softmax0' (Softmax", "axis"]


def case_attr_perm_out_of_range(d):
    m = model([helper.make_node("Transpose", ["x"], ["y"], name="transpose0", perm=[0, 2**40])],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'transpose0' (Transpose", "perm"]


def case_attr_convtranspose_too_many_phases(d):
    # strides 128 x 128 over a large enough output: 16384 phase kernels
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "W")
    m = model([helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="deconv0",
                                strides=[128, 128])],
              [tensor_in("x", [1, 2, 4, 4])], [tensor_in("y", None)], [w])
    return save(m, d), [], ["node 'deconv0' (kiln.ConvTransposeNHWC", "16384 phase kernels",
                            "at most 4096"]


def case_size_pad_overflow(d):
    pads = numpy_helper.from_array(np.array([0, I64_MAX, 0, I64_MAX], np.int64), "pads")
    m = model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad0")],
              [tensor_in("x", [2, 3])], [tensor_in("y", None)], [pads])
    return save(m, d), [], ["node 'pad0' (Pad", "out of range"]


def resize_model(scale):
    scales = numpy_helper.from_array(np.array([1, 1, scale, 1], np.float32), "scales")
    return model([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize0",
                                   mode="nearest")],
                 [tensor_in("x", [1, 1, 4, 4])], [tensor_in("y", None)], [scales])


def case_attr_resize_scale_infinite(d):
    return save(resize_model(np.inf), d), [], ["node 'resize0' (Resize", "scale inf",
                                                "output size out of range"]


def case_attr_resize_scale_nan(d):
    return save(resize_model(np.nan), d), [], ["node 'resize0' (Resize", "must be positive"]


def case_size_resize_tables_too_large(d):
    # the output (32 GiB) is within bounds; the index table kiln would build for the axis is not
    return save(resize_model(2.0**31), d), [], ["node 'resize0' (Resize", "tables would exceed"]


def case_size_range_overflow(d):
    start = numpy_helper.from_array(np.array(0, np.int64), "start")
    limit = numpy_helper.from_array(np.array(-2**63, np.int64), "limit")
    delta = numpy_helper.from_array(np.array(-1, np.int64), "delta")
    m = model([helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="range0")],
              [], [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
              [start, limit, delta], opset=13)
    return save(m, d), [], ["node 'range0' (Range", "too long"]


def case_graph_self_cycle(d):
    m = model([helper.make_node("Add", ["x", "a"], ["a"], name="self"),
               helper.make_node("Relu", ["a"], ["y"], name="after")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["cycle", "'self' (Add)"]


def case_graph_duplicate_output_name(d):
    m = model([helper.make_node("Relu", ["x"], ["t"], name="first"),
               helper.make_node("Neg", ["x"], ["t"], name="second"),
               helper.make_node("Exp", ["t"], ["y"], name="after")],
              [tensor_in("x", [4])], [tensor_in("y", [4])])
    return save(m, d), [], ["value 't' is defined twice", "'first' (Relu)", "'second' (Neg)"]


def case_graph_duplicate_initializer(d):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    m = add_model()
    m.graph.initializer.append(w)
    return save(m, d), [], ["value 'W' is defined twice", "an initializer"]


def case_graph_duplicate_input(d):
    m = add_model()
    m.graph.input.append(tensor_in("x", [2, 3]))
    return save(m, d), [], ["value 'x' is defined twice", "a graph input"]


def case_graph_output_never_produced(d):
    m = add_model()
    m.graph.output.append(tensor_in("ghost", [2, 3]))
    return save(m, d), [], ["graph output 'ghost' is not produced"]


def case_graph_no_outputs(d):
    m = add_model()
    del m.graph.output[:]
    return save(m, d), [], ["the graph has no outputs"]


# ---- external data (issue 12): locations from an untrusted file stay inside its folder ------

def outside_fifo(d):
    """A FIFO beside the model's folder: reading it would block (the test times out), so a
    refused location is known to be refused before anything is opened."""
    path = os.path.join(os.path.dirname(d), "outside.bin")
    if not os.path.exists(path):
        os.mkfifo(path)
    return path


def case_external_absolute(d):
    fifo = outside_fifo(d)
    return (save(external_weight_model(fifo), d), [],
            ["initializer 'W'", "escapes the model's folder"])


def case_external_dotdot_inside_then_out(d):
    outside_fifo(d)
    os.mkdir(os.path.join(d, "sub"))
    return (save(external_weight_model("sub/../../outside.bin"), d), [],
            ["initializer 'W'", "escapes the model's folder"])


def case_external_symlink_out(d):
    outside_fifo(d)
    os.symlink("../outside.bin", os.path.join(d, "weights.bin"))
    return (save(external_weight_model("weights.bin"), d), [],
            ["initializer 'W'", "escapes the model's folder", "resolves to"])


def case_external_symlinked_folder_out(d):
    outside_fifo(d)
    os.symlink("..", os.path.join(d, "up"))
    return (save(external_weight_model("up/outside.bin"), d), [],
            ["initializer 'W'", "escapes the model's folder"])


def case_external_fifo_inside(d):
    os.mkfifo(os.path.join(d, "weights.bin"))
    return (save(external_weight_model("weights.bin"), d), [],
            ["initializer 'W'", "is not a regular file"])


def case_external_folder(d):
    os.mkdir(os.path.join(d, "weights.bin"))
    return (save(external_weight_model("weights.bin"), d), [],
            ["initializer 'W'", "is not a regular file"])


def external_with(d, data, **keys):
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(data)
    m = external_weight_model("weights.bin")
    w = m.graph.initializer[0]
    for entry in w.external_data:
        if entry.key in keys:
            entry.value = keys.pop(entry.key)
    for key, value in keys.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return save(m, d)


def case_external_offset_past_end(d):
    return (external_with(d, b"\0" * 24, offset="4096"), [],
            ["initializer 'W'", "too short", "at offset 4096", "the file has 24"])


def case_external_offset_huge(d):
    return (external_with(d, b"\0" * 24, offset=str(I64_MAX)), [],
            ["initializer 'W'", "too short"])


def case_external_offset_overflows(d):
    return (external_with(d, b"\0" * 24, offset="99999999999999999999"), [],
            ["initializer 'W'", "offset '99999999999999999999' is not a byte count"])


def case_external_offset_negative(d):
    return (external_with(d, b"\0" * 24, offset="-8"), [],
            ["initializer 'W'", "offset '-8' is not a byte count"])


def case_external_length_past_end(d):
    return (external_with(d, b"\0" * 24, offset="16"), [],
            ["initializer 'W'", "too short", "24 bytes needed at offset 16"])


def case_external_file_shorter_than_tensor(d):
    return (external_with(d, b"\0" * 10, length="24"), [],
            ["initializer 'W'", "too short", "the file has 10"])


def case_external_length_disagrees(d):
    return (external_with(d, b"\0" * 24, length="12"), [],
            ["initializer 'W'", "holds 3 values", "needs 6"])


def case_external_no_location(d):
    m = external_weight_model("weights.bin")
    w = m.graph.initializer[0]
    keep = [(e.key, e.value) for e in w.external_data if e.key != "location"]
    del w.external_data[:]
    for key, value in keep:
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return save(m, d), [], ["initializer 'W'", "external data has no location"]


def bitcast_model(to):
    return model([helper.make_node("BitCast", ["x"], ["y"], name="bitcast0", to=to)],
                 [tensor_in("x", [2, 3])], [tensor_in("y", None)], opset=26)


def case_attr_bitcast_widths_differ(d):
    return save(bitcast_model(TensorProto.INT64), d), [], [
        "node 'bitcast0' (BitCast", "float32 (32 bits) to int64 (64 bits)", "widths differ"]


def case_attr_bitcast_to_string(d):
    return save(bitcast_model(TensorProto.STRING), d), [], ["node 'bitcast0' (BitCast",
                                                           "to string"]


def case_attr_bitcast_unknown_type(d):
    return save(bitcast_model(1000), d), [], ["node 'bitcast0' (BitCast", "type 1000",
                                              "not supported"]


def linear_attention_model(inputs=("q", "k", "v"), **attrs):
    attrs = {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "linear", **attrs}
    shapes = {"q": [1, 3, 8], "k": [1, 3, 8], "v": [1, 3, 8], "past": [1, 2, 4, 4],
              "decay": [1, 3, 2], "beta": [1, 3, 2], "bad_decay": [1, 3, 3]}
    return model([helper.make_node("LinearAttention", list(inputs), ["y"], name="linatt0",
                                   **attrs)],
                 [tensor_in(i, shapes[i]) for i in inputs if i], [tensor_in("y", None)],
                 opset=27)


def case_size_linear_attention_too_many_tokens(d):
    # unrolled per token: a long sequence is refused, not turned into 50000 kernels
    m = model([helper.make_node("LinearAttention", ["q", "q", "q"], ["y"], name="linatt0",
                                q_num_heads=1, kv_num_heads=1, update_rule="linear")],
              [tensor_in("q", [1, 16385, 2])], [tensor_in("y", None)], opset=27)
    return save(m, d), [], ["node 'linatt0' (LinearAttention",
                            "sequence length 16385 is over the 16384 tokens"]


def case_attr_linear_attention_unknown_rule(d):
    return save(linear_attention_model(update_rule="quadratic"), d), [], [
        "node 'linatt0' (LinearAttention", "update_rule 'quadratic'"]


def case_attr_linear_attention_heads_not_multiple(d):
    return save(linear_attention_model(q_num_heads=3), d), [], [
        "node 'linatt0' (LinearAttention", "q_num_heads (3)", "multiple of kv_num_heads (2)"]


def case_attr_linear_attention_gated_without_decay(d):
    return save(linear_attention_model(update_rule="gated"), d), [], [
        "node 'linatt0' (LinearAttention", "'gated' needs decay"]


def case_attr_linear_attention_bad_decay_shape(d):
    m = linear_attention_model(inputs=("q", "k", "v", "", "bad_decay"), update_rule="gated")
    return save(m, d), [], ["node 'linatt0' (LinearAttention",
                            "decay must be [1, 3, 2] or [1, 3, 8]"]


def flex_attention_model(kv_heads=2, **attrs):
    m = model([helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], name="flex0",
                                domain="ai.onnx.preview", **attrs)],
              [tensor_in("q", [1, 4, 3, 8]), tensor_in("k", [1, kv_heads, 5, 8]),
               tensor_in("v", [1, kv_heads, 5, 8])], [tensor_in("y", None)], opset=26)
    m.opset_import.append(helper.make_opsetid("ai.onnx.preview", 1))
    return m


def case_attr_flex_attention_heads_not_multiple(d):
    return save(flex_attention_model(kv_heads=3), d), [], [
        "node 'flex0' (ai.onnx.preview.FlexAttention", "Q heads (4)", "multiple of K heads (3)"]


def case_attr_flex_attention_score_mod_two_inputs(d):
    body = helper.make_graph([helper.make_node("Add", ["s", "u"], ["t"])], "mod",
                             [tensor_in("s", None), tensor_in("u", None)], [tensor_in("t", None)])
    return save(flex_attention_model(score_mod=body), d), [], [
        "node 'flex0' (ai.onnx.preview.FlexAttention", "the body has 2 inputs and 1 outputs",
        "the node needs 1 and 1"]


def tfidf_model(**attrs):
    attrs = {"mode": "TF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 0,
             "ngram_counts": [0, 2], "ngram_indexes": [0, 1, 2], "pool_int64s": [4, 5, 4, 5],
             **attrs}
    return model([helper.make_node("TfIdfVectorizer", ["x"], ["y"], name="tfidf0", **attrs)],
                 [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 6])],
                 [tensor_in("y", None)], opset=9)


def case_attr_tfidf_ngram_counts_past_pool(d):
    return save(tfidf_model(ngram_counts=[0, 9]), d), [], [
        "node 'tfidf0' (TfIdfVectorizer", "ngram_counts[1] = 9", "past the pool of 4"]


def case_attr_tfidf_ngram_without_index(d):
    return save(tfidf_model(ngram_indexes=[0, 1]), d), [], [
        "node 'tfidf0' (TfIdfVectorizer", "n-gram 2 of the pool has no entry in ngram_indexes"]


def case_attr_tfidf_negative_index(d):
    return save(tfidf_model(ngram_indexes=[0, -1, 2]), d), [], [
        "node 'tfidf0' (TfIdfVectorizer", "ngram_indexes[1] = -1 is out of range"]


def case_attr_tfidf_string_pool(d):
    m = tfidf_model(pool_strings=["a", "b"])
    del m.graph.node[0].attribute[[a.name for a in m.graph.node[0].attribute].index(
        "pool_int64s")]
    return save(m, d), [], ["node 'tfidf0' (TfIdfVectorizer", "pool_strings"]


def tree_model(**change):
    attrs = dict(n_targets=2, aggregate_function=1, post_transform=0, tree_roots=[0],
                 nodes_modes=helper.make_tensor("nodes_modes", TensorProto.UINT8, (3,), [0, 0, 0]),
                 nodes_featureids=[0, 1, 0],
                 nodes_splits=helper.make_tensor("nodes_splits", F, (3,), [1.0, 2.0, 3.0]),
                 nodes_trueleafs=[0, 1, 1], nodes_truenodeids=[1, 0, 1],
                 nodes_falseleafs=[0, 1, 1], nodes_falsenodeids=[2, 2, 3],
                 leaf_targetids=[0, 1, 0, 1],
                 leaf_weights=helper.make_tensor("leaf_weights", F, (4,), [1, 2, 3, 4]))
    attrs.update(change)
    m = model([helper.make_node("TreeEnsemble", ["x"], ["y"], name="trees0", domain="ai.onnx.ml",
                                **attrs)],
              [tensor_in("x", [3, 2])], [tensor_in("y", None)])
    m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 5))
    return m


def case_attr_tree_node_index_out_of_range(d):
    return save(tree_model(nodes_falsenodeids=[2, 2, 2**40]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "nodes_falsenodeids[2] = 1099511627776",
        "not in [0, 4)"]


def case_attr_tree_root_out_of_range(d):
    return save(tree_model(tree_roots=[3]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "tree_roots[0] = 3 is not in [0, 3)"]


def case_attr_tree_feature_out_of_range(d):
    return save(tree_model(nodes_featureids=[0, 2, 0]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "nodes_featureids[1] = 2 is not in [0, 2)"]


def case_attr_tree_target_out_of_range(d):
    return save(tree_model(leaf_targetids=[0, 1, -1, 1]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "leaf_targetids[2] = -1 is not in [0, 2)"]


def case_attr_tree_cycle(d):
    # node 2's false way leads back to node 0
    return save(tree_model(nodes_falseleafs=[0, 0, 0], nodes_falsenodeids=[2, 2, 0]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "cycle through node 0"]


def case_attr_tree_lengths_differ(d):
    return save(tree_model(nodes_trueleafs=[0, 1]), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "nodes_trueleafs has 2 entries, not 3"]


def case_attr_tree_membership_sets_missing(d):
    modes = helper.make_tensor("nodes_modes", TensorProto.UINT8, (3,), [6, 0, 6])
    sets = helper.make_tensor("membership_values", F, (3,), [1.0, 2.0, float("nan")])
    return save(tree_model(nodes_modes=modes, membership_values=sets), d), [], [
        "node 'trees0' (ai.onnx.ml.TreeEnsemble", "no NaN-terminated set left"]


def legacy_tree_model(op="TreeEnsembleRegressor", x_type=F, **change):
    """One tree: node 0 (x0 <= 1) leads to leaves 1 and 2, one weight each."""
    attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                 nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[1.0, 0.0, 0.0],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0])
    if op == "TreeEnsembleRegressor":
        attrs.update(n_targets=1, target_treeids=[0, 0], target_nodeids=[1, 2],
                     target_ids=[0, 0], target_weights=[1.0, 2.0])
        outputs = ["y"]
    else:
        attrs.update(classlabels_int64s=[0, 1], class_treeids=[0, 0], class_nodeids=[1, 2],
                     class_ids=[0, 1], class_weights=[1.0, 2.0])
        outputs = ["y", "z"]
    attrs.update(change)
    attrs = {k: v for k, v in attrs.items() if v is not None}
    m = model([helper.make_node(op, ["x"], outputs, name="forest0", domain="ai.onnx.ml",
                                **attrs)],
              [helper.make_tensor_value_info("x", x_type, [3, 2])],
              [tensor_in(o, None) for o in outputs])
    m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 1))
    return m


def case_attr_legacy_tree_successor_missing(d):
    return save(legacy_tree_model(nodes_falsenodeids=[7, 0, 0]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor",
        "nodes_falsenodeids[0] = 7: tree 0 has no such node"]


def case_attr_legacy_tree_feature_out_of_range(d):
    return save(legacy_tree_model(nodes_featureids=[5, 0, 0]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "nodes_featureids[0] = 5 is not in [0, 2)"]


def case_attr_legacy_tree_weight_on_branch(d):
    return save(legacy_tree_model(target_nodeids=[1, 0]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor",
        "target_nodeids[1]: node 0 of tree 0 is not a LEAF"]


def case_attr_legacy_tree_target_out_of_range(d):
    return save(legacy_tree_model(target_ids=[0, 3]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "target_ids[1] = 3 is not in [0, 1)"]


def case_attr_legacy_tree_cycle(d):
    # node 1 is a branch whose true way leads back to node 0
    return save(legacy_tree_model(nodes_modes=["BRANCH_LEQ", "BRANCH_LT", "LEAF"],
                                  nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 2, 0],
                                  target_nodeids=[2, 2]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "cycle through node 0"]


def case_attr_legacy_tree_duplicate_node(d):
    return save(legacy_tree_model(nodes_nodeids=[0, 1, 1]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "node 1 of tree 0 is listed twice"]


def case_attr_legacy_tree_unknown_mode(d):
    return save(legacy_tree_model(nodes_modes=["BRANCH_MEMBER", "LEAF", "LEAF"]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "nodes_modes[0] = 'BRANCH_MEMBER'"]


def case_attr_legacy_tree_classifier_string_labels(d):
    return save(legacy_tree_model("TreeEnsembleClassifier", classlabels_int64s=None,
                                  classlabels_strings=["no", "yes"]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleClassifier", "classlabels_strings",
        "string tensors"]


def case_attr_legacy_tree_regressor_int_input(d):
    return save(legacy_tree_model(x_type=TensorProto.INT64), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleRegressor", "X is int64",
        "takes float or double"]


def case_attr_legacy_tree_base_values_count(d):
    return save(legacy_tree_model("TreeEnsembleClassifier", classlabels_int64s=[0, 1, 2],
                                  base_values=[0.5, 0.5]), d), [], [
        "node 'forest0' (ai.onnx.ml.TreeEnsembleClassifier",
        "base_values has 2 values, not one per class (3)"]


def ml_model(op, x_shape, outputs, opset_ml=1, **attrs):
    m = model([helper.make_node(op, ["x"], [o for o in outputs], name="ml0", domain="ai.onnx.ml",
                                **attrs)],
              [tensor_in("x", x_shape)], [tensor_in(o, None) for o in outputs])
    m.opset_import.append(helper.make_opsetid("ai.onnx.ml", opset_ml))
    return m


def case_attr_linear_classifier_string_labels(d):
    return save(ml_model("LinearClassifier", [2, 3], ["y", "z"], coefficients=[1.0] * 6,
                         intercepts=[0.0, 1.0], classlabels_strings=["a", "b"]), d), [], [
        "node 'ml0' (ai.onnx.ml.LinearClassifier", "classlabels_strings",
        "string tensors"]


def case_attr_linear_classifier_coefficient_count(d):
    return save(ml_model("LinearClassifier", [2, 3], ["y", "z"], coefficients=[1.0] * 5,
                         intercepts=[0.0, 1.0], classlabels_ints=[0, 1]), d), [], [
        "node 'ml0' (ai.onnx.ml.LinearClassifier", "coefficients has 5 values",
        "2 classes of 3 features need 6"]


def case_attr_linear_regressor_post_transform(d):
    return save(ml_model("LinearRegressor", [2, 3], ["y"], coefficients=[1.0] * 3,
                         post_transform="SIGMOID"), d), [], [
        "node 'ml0' (ai.onnx.ml.LinearRegressor", "post_transform 'SIGMOID'"]


def case_attr_scaler_scale_count(d):
    return save(ml_model("Scaler", [2, 3], ["y"], scale=[1.0, 2.0]), d), [], [
        "node 'ml0' (ai.onnx.ml.Scaler", "scale has 2 values: one, or one per feature (3)"]


def case_attr_normalizer_norm(d):
    return save(ml_model("Normalizer", [2, 3], ["y"], norm="L3"), d), [], [
        "node 'ml0' (ai.onnx.ml.Normalizer", "norm 'L3' is not MAX, L1 or L2"]


def case_attr_svm_probability_estimates(d):
    return save(ml_model("SVMClassifier", [2, 2], ["y", "z"], classlabels_ints=[0, 1],
                         coefficients=[1.0, -1.0], rho=[0.5], support_vectors=[1.0, 0, 0, 1.0],
                         vectors_per_class=[1, 1], kernel_params=[0.5, 0, 0], prob_a=[1.0],
                         prob_b=[0.0]), d), [], [
        "node 'ml0' (ai.onnx.ml.SVMClassifier", "prob_a / prob_b", "not supported"]


def case_attr_svm_support_vector_count(d):
    return save(ml_model("SVMRegressor", [2, 2], ["y"], coefficients=[1.0, -1.0], rho=[0.5],
                         support_vectors=[1.0, 0, 0], n_supports=2), d), [], [
        "node 'ml0' (ai.onnx.ml.SVMRegressor", "support_vectors has 3 values",
        "2 vectors of 2 features need 4"]


def case_attr_imputer_two_value_lists(d):
    return save(ml_model("Imputer", [2, 3], ["y"], imputed_value_floats=[1.0],
                         imputed_value_int64s=[1], replaced_value_float=0.0), d), [], [
        "node 'ml0' (ai.onnx.ml.Imputer",
        "give exactly one of imputed_value_floats and imputed_value_int64s"]


def case_attr_feature_vectorizer_dimension_count(d):
    return save(ml_model("FeatureVectorizer", [2, 3], ["y"], inputdimensions=[3, 1]), d), [], [
        "node 'ml0' (ai.onnx.ml.FeatureVectorizer", "inputdimensions has 2 entries for 1 inputs"]


def case_attr_flex_attention_prob_mod_changes_type(d):
    body = helper.make_graph([helper.make_node("Cast", ["p"], ["p64"], to=TensorProto.DOUBLE)],
                             "prob_mod", [helper.make_tensor_value_info("p", F, None)],
                             [helper.make_tensor_value_info("p64", TensorProto.DOUBLE, None)])
    return save(flex_attention_model(prob_mod=body), d), [], [
        "node 'flex0/FlexOutput'", "prob_mod must keep the probabilities' shape and element type"]


def case_attr_one_hot_encoder_string_categories(d):
    return save(ml_model("OneHotEncoder", [2, 3], ["y"], cats_strings=["a", "b"]), d), [], [
        "node 'ml0' (ai.onnx.ml.OneHotEncoder", "cats_strings", "string tensors"]


def center_crop_pad_model(shape, **attrs):
    sh = numpy_helper.from_array(np.array(shape, np.int64), "shape")
    return model([helper.make_node("CenterCropPad", ["x", "shape"], ["y"], name="ccp0", **attrs)],
                 [tensor_in("x", [4, 6, 3])], [tensor_in("y", None)], [sh], opset=18)


def case_attr_center_crop_pad_negative_length(d):
    return save(center_crop_pad_model([2, -3, 3]), d), [], [
        "node 'ccp0' (CenterCropPad", "shape[1] = -3 is negative"]


def case_attr_center_crop_pad_axes_twice(d):
    return save(center_crop_pad_model([2, 2], axes=[0, -3]), d), [], [
        "node 'ccp0' (CenterCropPad", "axis 0 is named twice"]


def case_attr_center_crop_pad_shape_count(d):
    return save(center_crop_pad_model([2, 2], axes=[0]), d), [], [
        "node 'ccp0' (CenterCropPad", "shape has 2 entries for 1 axes"]


def topk_model(k, **attrs):
    kk = numpy_helper.from_array(np.array([k], np.int64), "k")
    return model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk0", **attrs)],
                 [tensor_in("x", [3, 4])],
                 [tensor_in("v", None), helper.make_tensor_value_info("i", TensorProto.INT64, None)],
                 [kk], opset=11)


def case_attr_topk_k_too_large(d):
    return save(topk_model(5), d), [], ["node 'topk0' (TopK", "k = 5 is outside [0, 4]"]


def case_attr_topk_axis_out_of_range(d):
    return save(topk_model(2, axis=2), d), [], ["node 'topk0' (TopK", "axis 2 is out of range"]


def case_topk_runtime_k_undeclared(d):
    m = model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk0")],
              [tensor_in("x", [3, 4]), helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
              [tensor_in("v", None), helper.make_tensor_value_info("i", TensorProto.INT64, None)],
              opset=11)
    return save(m, d), [], ["node 'topk0' (TopK", "given at run time", "declare the shape"]


def case_attr_window_output_datatype(d):
    size = numpy_helper.from_array(np.array(8, np.int64), "size")
    m = model([helper.make_node("HannWindow", ["size"], ["y"], name="hann0", output_datatype=8)],
              [], [tensor_in("y", None)], [size], opset=17)
    return save(m, d), [], ["node 'hann0' (HannWindow", "output_datatype 8 is not a numeric"]


def col2im_model(block, **attrs):
    image = numpy_helper.from_array(np.array([5, 5], np.int64), "image")
    blk = numpy_helper.from_array(np.array(block, np.int64), "block")
    return model([helper.make_node("Col2Im", ["x", "image", "block"], ["y"], name="col0", **attrs)],
                 [tensor_in("x", [1, 5, 5])], [tensor_in("y", None)], [image, blk], opset=18)


def case_attr_col2im_dilations_count(d):
    return save(col2im_model([1, 5], dilations=[1, 1, 1]), d), [], [
        "node 'col0' (Col2Im", "attribute dilations has 3 values, expected 2"]


def case_col2im_block_not_dividing(d):
    return save(col2im_model([2, 2]), d), [], [
        "node 'col0' (Col2Im", "not a multiple of the block size 4"]


def case_affine_grid_theta_shape(d):
    size = numpy_helper.from_array(np.array([2, 3, 5, 6], np.int64), "size")
    m = model([helper.make_node("AffineGrid", ["theta", "size"], ["grid"], name="ag0")],
              [tensor_in("theta", [2, 3, 4])], [tensor_in("grid", None)], [size], opset=20)
    return save(m, d), [], ["node 'ag0' (AffineGrid", "theta must be [N, 2, 3]"]


def case_attr_stft_zero_step(d):
    step = numpy_helper.from_array(np.array(0, np.int64), "step")
    length = numpy_helper.from_array(np.array(16, np.int64), "length")
    m = model([helper.make_node("STFT", ["x", "step", "", "length"], ["y"], name="stft0")],
              [tensor_in("x", [1, 64, 1])], [tensor_in("y", None)], [step, length], opset=17)
    return save(m, d), [], ["node 'stft0' (STFT", "frame_step 0 must be positive"]


# ---- the small element types (float8, float4, int4, int2) ----------------------------------

def cast_model(to, **attrs):
    return model([helper.make_node("Cast", ["x"], ["y"], name="cast0", to=to, **attrs)],
                 [tensor_in("x", [4])], [helper.make_tensor_value_info("y", to, [4])], opset=25)


def case_cast_round_mode_unknown(d):
    return save(cast_model(24, round_mode="sideways"), d), [], [
        "'cast0' (Cast", "round_mode", "sideways"]


def case_cast_saturate_not_boolean(d):
    return save(cast_model(17, saturate=2), d), [], ["'cast0' (Cast", "saturate must be 0 or 1"]


def case_int4_initializer_too_short(d):
    # int4 packs two a byte: 5 values need 3 bytes, 2 bytes hold only 4
    w = TensorProto(name="W", data_type=22, dims=[5], raw_data=b"\x21\x43")
    m = model([helper.make_node("Cast", ["W"], ["y"], name="cast0", to=F)],
              [], [tensor_in("y", [5])], [w], opset=25)
    return save(m, d), [], ["initializer 'W'", "holds 4 values", "needs 5"]


def if_model(then_nodes, then_out, else_nodes, else_out, initializers=()):
    """y = If(c) over x[2,3], the condition a run-time input."""
    then_g = helper.make_graph(then_nodes, "then", [], [then_out])
    else_g = helper.make_graph(else_nodes, "else", [], [else_out])
    node = helper.make_node("If", ["c"], ["y"], name="if0", then_branch=then_g,
                            else_branch=else_g)
    return model([node], [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                          tensor_in("x", [2, 3])], [tensor_in("y", None)], initializers)


def case_if_branches_disagree_on_shape(d):
    w = numpy_helper.from_array(np.ones(3, np.float32), "w")
    m = if_model([helper.make_node("Relu", ["x"], ["a"], name="relu_then")],
                 tensor_in("a", None),
                 [helper.make_node("Relu", ["w"], ["b"], name="relu_else")],
                 tensor_in("b", None), [w])
    return save(m, d), [], ["node 'if0' (If", "output 0 has shape [2,3] in then_branch but [3] "
                            "in else_branch", "along one dim, not a rank or several dims"]


def case_if_neither_branch_compiles(d):
    w = numpy_helper.from_array(np.ones((4, 5), np.float32), "w")
    m = if_model([helper.make_node("Add", ["x", "w"], ["a"], name="add_then")],
                 tensor_in("a", None),
                 [helper.make_node("Sub", ["x", "w"], ["b"], name="sub_else")],
                 tensor_in("b", None), [w])
    return save(m, d), [], ["node 'if0' (If", "neither branch can be compiled",
                            "node 'add_then' (Add", "node 'sub_else' (Sub"]


# ---- data-dependent output lengths (ops/data_dependent.c) ----

def nonzero_model(then=None, shape=(2, 3)):
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero0")]
    out = "nz"
    if then:
        nodes.append(helper.make_node(then, ["nz"], ["y"], name="reader0"))
        out = "y"
    return model(nodes, [tensor_in("x", list(shape))],
                 [helper.make_tensor_value_info(out, TensorProto.INT64, None)])


def case_data_dependent_read_by_node(d):
    # a reduction over every axis with keepdims: [1, 1], the length is not one of its dims
    return save(nonzero_model("ReduceMax"), d), [], [
        "node 'reader0'", "depends on the data", "output 'nz' of NonZero 'nonzero0'",
        "output 0 ('y') does not keep it as one of its dims"]


def case_data_dependent_output_not_leading_view(d):
    # NonZero -> Cast, [2, n], is copied densely into the output; a view computes nothing to copy
    return save(nonzero_model("Identity"), d), [], [
        "node 'reader0'", "output 'y' is a graph output", "along dim 1, after a dim larger "
        "than 1, and the node is a view"]


def case_data_dependent_read_at_an_offset(d):
    m = model([helper.make_node("NonZero", ["x"], ["nz"], name="nonzero0"),
               helper.make_node("Transpose", ["nz"], ["rows"], name="t0"),
               helper.make_node("Slice", ["rows", "one", "big"], ["y"], name="reader0")],
              [tensor_in("x", [2, 3])], [helper.make_tensor_value_info("y", TensorProto.INT64,
                                                                        None)],
              [numpy_helper.from_array(np.array([1], np.int64), "one"),
               numpy_helper.from_array(np.array([100], np.int64), "big")])
    return save(m, d), [], ["node 'reader0'", "reads 'rows', whose length depends on the data, "
                            "other than along one of its loops"]


def case_data_dependent_lengths_of_two_nodes(d):
    m = model([helper.make_node("NonZero", ["x"], ["a"], name="nonzero0"),
               helper.make_node("NonZero", ["x"], ["b"], name="nonzero1"),
               helper.make_node("Add", ["a", "b"], ["y"], name="reader0")],
              [tensor_in("x", [2, 3])], [helper.make_tensor_value_info("y", TensorProto.INT64,
                                                                        None)])
    return save(m, d), [], ["node 'reader0'", "through different nodes",
                            "NonZero 'nonzero0'", "NonZero 'nonzero1'"]


def case_data_dependent_for_cuda(d):
    return save(nonzero_model(), d), ["--target", "cuda-sm80"], [
        "output 'nz'", "depends on the data", "CUDA back end compiles fixed shapes only"]


def case_data_dependent_with_bounded_dim(d):
    return save(nonzero_model(shape=("n", 3)), d), ["--shape", "x:1..8x3"], [
        "bounded dim and an output whose length depends on the data", "not supported yet"]


def case_compress_condition_too_long(d):
    m = model([helper.make_node("Compress", ["x", "c"], ["y"], axis=1, name="compress0")],
              [tensor_in("x", [2, 3]), helper.make_tensor_value_info("c", TensorProto.BOOL, [5])],
              [tensor_in("y", None)])
    return save(m, d), [], ["node 'compress0'", "the condition has 5 elements, more than the 3"]



def case_data_dependent_output_twice(d):
    m = model([helper.make_node("NonZero", ["x"], ["nz"], name="nonzero0")],
              [tensor_in("x", [2, 3])],
              [helper.make_tensor_value_info("nz", TensorProto.INT64, None)] * 2)
    return save(m, d), [], ["node 'nonzero0'", "output 'nz' is listed twice",
                            "depends on the data"]


def case_nms_too_many_boxes(d):
    m = model([helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms0")],
              [tensor_in("boxes", [1, 300, 4]), tensor_in("scores", [1, 2, 300])],
              [helper.make_tensor_value_info("sel", TensorProto.INT64, None)], opset=11)
    return save(m, d), [], ["node 'nms0'", "300 boxes", "at most 256 boxes"]

def case_if_runtime_condition_for_cuda(d):
    m = if_model([helper.make_node("Relu", ["x"], ["a"], name="relu_then")],
                 tensor_in("a", None),
                 [helper.make_node("Neg", ["x"], ["b"], name="neg_else")],
                 tensor_in("b", None))
    return save(m, d), ["--target", "cuda-sm80"], [
        "branch of an If whose condition is only known at run time",
        "CUDA back end does not support"]


def scan_model(x_shape, x_input=True):
    """z = Scan over x (opset 9) of a running sum; x a graph input, or reshaped to a shape
    given at run time (so that its length is not known when the model loads)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "next"], ["s_out"], name="add_body"),
         helper.make_node("Identity", ["s_out"], ["z_out"], name="id_body")], "body",
        [tensor_in("s_in", [2]), tensor_in("next", [2])],
        [tensor_in("s_out", [2]), tensor_in("z_out", [2])])
    nodes = [] if x_input else [helper.make_node("Reshape", ["x", "shape"], ["xr"],
                                                 name="reshape0")]
    nodes.append(helper.make_node("Scan", ["s0", "x" if x_input else "xr"], ["s", "z"],
                                  name="scan0", body=body, num_scan_inputs=1))
    inputs = [tensor_in("s0", [2]), tensor_in("x", x_shape)]
    if not x_input:
        inputs.append(helper.make_tensor_value_info("shape", TensorProto.INT64, [2]))
    return model(nodes, inputs, [tensor_in("s", None), tensor_in("z", None)], opset=11)


def case_scan_too_many_steps(d):
    return save(scan_model([300, 2]), d), [], ["node 'scan0' (Scan", "300 steps",
                                               "1 to 256 steps"]


def case_scan_over_value_of_run_time_shape(d):
    return save(scan_model([3, 2], x_input=False), d), [], [
        "node 'scan0' (Scan", "no shape known when the model is loaded"]


def loop_model(trip_input, cond_value):
    """y, z = Loop(M, cond, y0) of y += 1 with scan output z; M a graph input or a constant."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"], name="pass_cond"),
         helper.make_node("Add", ["y_in", "one"], ["y_out"], name="add_one"),
         helper.make_node("Identity", ["y_out"], ["z_out"], name="scan_id")], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []), tensor_in("y_in", [2])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), tensor_in("y_out", [2]),
         tensor_in("z_out", [2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "one")])
    inits = [numpy_helper.from_array(np.array(cond_value), "c")]
    inputs = [tensor_in("y0", [2])]
    if trip_input:
        inputs.append(helper.make_tensor_value_info("M", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(3, np.int64), "M"))
    node = helper.make_node("Loop", ["M", "c", "y0"], ["y", "z"], name="loop0", body=body)
    return model([node], inputs, [tensor_in("y", None), tensor_in("z", None)], inits)


def case_loop_runtime_trip_count(d):
    return save(loop_model(True, True), d), [], [
        "node 'loop0' (Loop", "trip count M is given at run time and no scan output declares its "
        "length", "it is graph input 'M': --value M:V,... compiles for one value of it"]


def runtime_operand_model(op, y_shape, opset=19, **attrs):
    """Resize (scales) or Pad (pads) with the shape-carrying operand a graph input."""
    if op == "Resize":
        node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="op0", **attrs)
        operand = helper.make_tensor_value_info("s", F, [4 if "axes" not in attrs else 2])
    else:
        node = helper.make_node("Pad", ["x", "s"], ["y"], name="op0", **attrs)
        operand = helper.make_tensor_value_info("s", TensorProto.INT64, [8])
    return model([node], [tensor_in("x", [1, 1, 2, 2]), operand], [tensor_in("y", y_shape)],
                 opset=opset)


def case_runtime_resize_scales_undeclared(d):
    return save(runtime_operand_model("Resize", None), d), [], [
        "node 'op0' (Resize", "input 2 ('s') is given at run time",
        "must declare the shape of output 'y'", "it is graph input 's': --value s:V,..."]


def case_runtime_pads_computed_from_input(d):
    # pads = Concat(zeros, s): the message names the graph input the operand comes from
    zeros = numpy_helper.from_array(np.zeros(4, np.int64), "zeros")
    nodes = [helper.make_node("Concat", ["zeros", "s"], ["pads"], name="cat0", axis=0),
             helper.make_node("Pad", ["x", "pads"], ["y"], name="op0")]
    m = model(nodes, [tensor_in("x", [1, 1, 2, 2]),
                      helper.make_tensor_value_info("s", TensorProto.INT64, [4])],
              [tensor_in("y", None)], [zeros], opset=19)
    return save(m, d), [], ["node 'op0' (Pad", "input 1 ('pads') is given at run time",
                            "it is computed from graph input 's': --value s:V,..."]


def case_value_binding_wrong_count(d):
    return save(runtime_operand_model("Pad", None), d), ["--value", "s:1,2,3"], [
        "--value s: 3 elements given, but the input is int64 [8]"]


def case_value_binding_names_no_input(d):
    return save(add_model(), d), ["--value", "W:1,2,3,4,5,6"], [
        "--value names 'W', which is not a tensor input of the model"]


def case_value_binding_fraction_for_integers(d):
    return save(runtime_operand_model("Pad", None), d), ["--value", "s:0,0,0,0,0,0,0,0.5"], [
        "--value s: element 7 does not fit the input's type int64"]


def case_value_binding_bounded_input(d):
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu0")], [tensor_in("x", ["N", 3])],
              [tensor_in("y", ["N", 3])])
    return save(m, d), ["--shape", "x:1..4x3", "--value", "x:1,2,3"], [
        "--value x: the input has a bounded dim"]


def case_value_binding_sequence_tensor(d):
    return save(seq_identity_model(), d), ["--sequence", "s:1",
                                           "--value", "s[0]:1,2,3,4,5,6"], [
        "--value names 's[0]', a tensor of a sequence or optional input"]


def case_runtime_resize_scales_changes_unlisted_axis(d):
    m = runtime_operand_model("Resize", [1, 2, 4, 4], axes=[2, 3])
    return save(m, d), [], ["node 'op0' (Resize", "changes axis 1, which is not resized"]


def case_runtime_resize_antialias_crop_scales(d):
    m = runtime_operand_model("Resize", [1, 1, 1, 1], mode="linear", antialias=1,
                              coordinate_transformation_mode="tf_crop_and_resize")
    roi = numpy_helper.from_array(np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32), "roi")
    m.graph.initializer.append(roi)
    m.graph.node[0].input[1] = "roi"
    return save(m, d), [], ["node 'op0' (Resize", "antialias with tf_crop_and_resize and scales"]


def case_runtime_pad_declared_rank(d):
    return save(runtime_operand_model("Pad", [1, 4, 5]), d), [], [
        "node 'op0' (Pad", "does not have the rank of the input"]


def case_runtime_pad_reflect_empty_axis(d):
    m = runtime_operand_model("Pad", [1, 1, 4, 5], mode="reflect")
    m.graph.input[0].CopyFrom(tensor_in("x", [1, 0, 2, 2]))
    return save(m, d), [], ["node 'op0' (Pad", "cannot pad the empty axis 1"]


def case_loop_scan_outputs_of_no_iteration(d):
    return save(loop_model(False, False), d), [], [
        "node 'loop0' (Loop", "ends after 0 of 3 iterations", "scan outputs"]


def case_loop_nested_too_many_steps(d):
    """Loop of 100 iterations whose body holds a Loop of 100: 10,100 bodies to inline."""
    def body_of(inner):
        nodes = [helper.make_node("Identity", ["c_in"], ["c_out"], name="pass_cond")]
        if inner:
            nodes.append(helper.make_node("Loop", ["M", "", "y_in"], ["y_out"], name="inner",
                                          body=body_of(False)))
        else:
            nodes.append(helper.make_node("Neg", ["y_in"], ["y_out"], name="neg"))
        return helper.make_graph(
            nodes, "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                            helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
                            tensor_in("y_in", [2])],
            [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), tensor_in("y_out", [2])])
    node = helper.make_node("Loop", ["M", "", "y0"], ["y"], name="outer", body=body_of(True))
    m = model([node], [tensor_in("y0", [2])], [tensor_in("y", None)],
              [numpy_helper.from_array(np.array(100, np.int64), "M")])
    return save(m, d), [], ["(Loop", "more than 4096 steps of Loop and Scan bodies"]


def case_if_branch_missing(d):
    m = if_model([helper.make_node("Relu", ["x"], ["a"], name="relu_then")],
                 tensor_in("a", None), [], tensor_in("x", None))
    attrs = m.graph.node[0].attribute
    del attrs[[a.name for a in attrs].index("else_branch")]
    return save(m, d), [], ["node 'if0' (If", "attribute 'else_branch' (a graph) is missing"]


# ---- sequences and optionals: compiled away, so their structure must be known -------------

def seq_model(nodes, inputs, outputs, initializers=(), opset=18):
    return model(nodes, inputs, outputs, initializers, opset=opset)


def seq3(name="seq0"):
    """s = SequenceConstruct(x, x, x) over x[2,3]"""
    return helper.make_node("SequenceConstruct", ["x", "x", "x"], ["s"], name=name)


def case_sequence_at_runtime_position_shapes_differ(d):
    m = seq_model([helper.make_node("SequenceConstruct", ["x", "z"], ["s"], name="seq0"),
                   helper.make_node("SequenceAt", ["s", "p"], ["y"], name="at0")],
                  [tensor_in("x", [2, 3]), tensor_in("z", [3, 2]),
                   helper.make_tensor_value_info("p", TensorProto.INT64, [])],
                  [tensor_in("y", None)])
    return save(m, d), [], ["node 'at0' (SequenceAt", "position 'p' is computed at run time",
                            "'x' is float32 [2,3] and 'z' is float32 [3,2]"]


def case_sequence_at_out_of_range(d):
    p = numpy_helper.from_array(np.array(3, np.int64), "p")
    m = seq_model([seq3(), helper.make_node("SequenceAt", ["s", "p"], ["y"], name="at0")],
                  [tensor_in("x", [2, 3])], [tensor_in("y", None)], [p])
    return save(m, d), [], ["node 'at0' (SequenceAt", "position 3 ('p') is out of range for a "
                            "sequence of 3 tensors"]


def case_sequence_erase_empty(d):
    m = seq_model([helper.make_node("SequenceEmpty", [], ["e"], name="empty0"),
                   helper.make_node("SequenceErase", ["e"], ["s"], name="erase0"),
                   helper.make_node("SequenceLength", ["s"], ["y"], name="len0")],
                  [], [helper.make_tensor_value_info("y", TensorProto.INT64, [])])
    return save(m, d), [], ["node 'erase0' (SequenceErase", "the sequence is empty"]


def case_sequence_insert_wrong_type(d):
    m = seq_model([seq3(), helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32,
                                            name="cast0"),
                   helper.make_node("SequenceInsert", ["s", "xi"], ["s2"], name="insert0"),
                   helper.make_node("ConcatFromSequence", ["s2"], ["y"], axis=0, name="cat0")],
                  [tensor_in("x", [2, 3])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'insert0' (SequenceInsert", "tensor 'xi' is int32 but the "
                            "sequence holds float32"]


def seq_identity_model(elem_shape=(2, 3), seq_type=None):
    """y = Identity(s) over a sequence input s (the interface's sequence in and out)"""
    seq_type = seq_type or helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(F, list(elem_shape)))
    return seq_model([helper.make_node("Identity", ["s"], ["y"], name="id0")],
                     [helper.make_value_info("s", seq_type)],
                     [helper.make_value_info("y", seq_type)])


def case_sequence_input_unbound(d):
    return save(seq_identity_model(), d), [], [
        "input 's' is a sequence: bind its length with --sequence s:N", "--shape s[0]:DIMS"]


def case_sequence_input_element_shape_unbound(d):
    return save(seq_identity_model(("N", 3)), d), ["--sequence", "s:2"], [
        "input 's[0]' dimension 0 ('N') is symbolic", "--shape s[0]:1x3"]


def case_sequence_binding_names_no_input(d):
    return save(seq_identity_model(), d), ["--sequence", "s:2", "--sequence", "t:1"], [
        "--sequence names 't', which is not a sequence or optional input of the model"]


def case_sequence_input_of_sequences(d):
    inner = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))
    return save(seq_identity_model(seq_type=helper.make_sequence_type_proto(inner)), d), [
        "--sequence", "s:1"], ["input 's' is a sequence whose elements are each a sequence",
                               "kiln takes sequences of tensors"]


def case_optional_input_unbound(d):
    opt = helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2]))
    m = seq_model([helper.make_node("OptionalHasElement", ["o"], ["y"], name="has0")],
                  [helper.make_value_info("o", opt)],
                  [helper.make_tensor_value_info("y", TensorProto.BOOL, [])])
    return save(m, d), [], ["input 'o' is an optional", "--optional o:present",
                            "--optional o:absent"]


def case_sequence_data_of_sequences(d):
    """kiln check: a data set's SequenceProto holding sequences, not tensors"""
    path = save(seq_identity_model(), d)
    data = os.path.join(d, "test_data_set_0")
    os.mkdir(data)
    t = numpy_helper.from_array(np.ones((2, 3), np.float32))
    inner = helper.make_sequence("in", helper.SequenceProto.TENSOR, [t])
    outer = helper.make_sequence("s", helper.SequenceProto.SEQUENCE, [inner, inner])
    outer.elem_type = helper.SequenceProto.SEQUENCE
    for name in ("input_0.pb", "output_0.pb"):
        with open(os.path.join(data, name), "wb") as f:
            f.write(outer.SerializeToString())
    return path, ["check"], ["input_0.pb' holds a sequence of sequences",
                             "kiln takes sequences of tensors"]


def case_sequence_read_as_tensor(d):
    m = seq_model([seq3(), helper.make_node("Relu", ["s"], ["y"], name="relu0")],
                  [tensor_in("x", [2, 3])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'relu0' (Relu", "input 's' is a sequence; Relu takes tensors"]


def case_split_to_sequence_runtime_split(d):
    m = seq_model([helper.make_node("SplitToSequence", ["x", "k"], ["s"], axis=1, name="split0"),
                   helper.make_node("SequenceLength", ["s"], ["y"], name="len0")],
                  [tensor_in("x", [2, 6]), helper.make_tensor_value_info("k", TensorProto.INT64,
                                                                         [])],
                  [helper.make_tensor_value_info("y", TensorProto.INT64, [])])
    return save(m, d), [], ["node 'split0' (SplitToSequence", "split 'k' is computed at run "
                            "time", "length depends on it"]


def case_concat_from_sequence_new_axis_out_of_range(d):
    m = seq_model([seq3(), helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=-4,
                                            new_axis=1, name="cat0")],
                  [tensor_in("x", [2, 3])], [tensor_in("y", None)])
    return save(m, d), [], ["node 'cat0' (ConcatFromSequence", "axis -4 is out of range for "
                            "new_axis=1 on tensors of rank 2"]


def seq_if_model(then_inputs, else_inputs):
    """y = SequenceLength(If(c) { SequenceConstruct(then_inputs) } else { ... })"""
    then_g = helper.make_graph([helper.make_node("SequenceConstruct", then_inputs, ["ts"],
                                                 name="seq_then")], "then", [],
                               [helper.make_tensor_sequence_value_info("ts", F, None)])
    else_g = helper.make_graph([helper.make_node("SequenceConstruct", else_inputs, ["es"],
                                                 name="seq_else")], "else", [],
                               [helper.make_tensor_sequence_value_info("es", F, None)])
    return seq_model([helper.make_node("If", ["c"], ["s"], name="if0", then_branch=then_g,
                                       else_branch=else_g),
                      helper.make_node("SequenceLength", ["s"], ["y"], name="len0")],
                     [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                      tensor_in("x", [2, 3])],
                     [helper.make_tensor_value_info("y", TensorProto.INT64, [])])


def case_if_sequences_of_different_lengths(d):
    return save(seq_if_model(["x"], ["x", "x"]), d), [], [
        "node 'if0' (If", "output 0 ('s') is a sequence of 1 tensors in then_branch but 2 in "
        "else_branch", "known only at run time (the condition 'c'",
        "it is graph input 'c': --value c:V"]


def case_if_optional_empty_in_one_branch(d):
    then_g = helper.make_graph([helper.make_node("Optional", ["x"], ["to"], name="opt_then")],
                               "then", [], [helper.make_tensor_value_info("to", F, None)])
    else_g = helper.make_graph([helper.make_node("Optional", [], ["eo"], name="opt_else",
                                                 type=helper.make_tensor_type_proto(F, [2, 3]))],
                               "else", [], [helper.make_tensor_value_info("eo", F, None)])
    m = seq_model([helper.make_node("If", ["c"], ["o"], name="if0", then_branch=then_g,
                                    else_branch=else_g),
                   helper.make_node("OptionalHasElement", ["o"], ["y"], name="has0")],
                  [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                   tensor_in("x", [2, 3])],
                  [helper.make_tensor_value_info("y", TensorProto.BOOL, [])])
    return save(m, d), [], ["node 'if0' (If", "output 0 ('o') is an optional that is empty in "
                            "else_branch but not in then_branch", "known only at run time"]


def case_optional_get_element_empty(d):
    m = seq_model([helper.make_node("Optional", [], ["o"], name="opt0",
                                    type=helper.make_tensor_type_proto(F, [2, 3])),
                   helper.make_node("OptionalGetElement", ["o"], ["y"], name="get0")],
                  [], [tensor_in("y", None)])
    return save(m, d), [], ["node 'get0' (OptionalGetElement", "optional 'o' is empty"]


# ---- regression inputs the fuzz targets found (tests/bad-inputs/fuzz/expected.txt) ----------

FUZZ_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz")


def fuzz_case(kind, file, fragments):
    def make(d):
        with open(os.path.join(FUZZ_DIR, kind, file), "rb") as f:
            data = f.read()
        if kind != "tensor":
            path = os.path.join(d, "bad.onnx")
            with open(path, "wb") as f:
                f.write(data)
            return path, [], fragments
        # a tensor: the input_0.pb of a data set `kiln check` reads for a one-Relu model
        data_dir = os.path.join(d, "test_data_set_0")
        os.mkdir(data_dir)
        with open(os.path.join(data_dir, "input_0.pb"), "wb") as f:
            f.write(data)
        return save(relu_model([1]), d), ["check"], fragments
    return make


def fuzz_cases():
    listing = os.path.join(FUZZ_DIR, "expected.txt")
    if not os.path.exists(listing):
        return []
    cases = []
    with open(listing) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ")]
            kind, file = parts[0].split("/", 1)
            cases.append((f"fuzz_{kind}_{os.path.splitext(file)[0]}",
                          fuzz_case(kind, file, parts[1:])))
    return cases


# ---- string tensors -------------------------------------------------------------------

S = TensorProto.STRING


def strings_in(name, shape):
    return helper.make_tensor_value_info(name, S, shape)


def concat_model():
    """result = StringConcat(x, y) on two strings [2]."""
    return model([helper.make_node("StringConcat", ["x", "y"], ["result"], name="concat0")],
                 [strings_in("x", [2]), strings_in("y", [2])], [strings_in("result", [2])],
                 opset=20)


def case_strings_normalizer_stopwords_undeclared_shape(d):
    m = model([helper.make_node("StringNormalizer", ["x"], ["y"], name="norm0",
                                stopwords=["monday"])],
              [strings_in("x", [4])], [strings_in("y", None)], opset=10)
    return save(m, d), [], ["node 'norm0' (StringNormalizer",
                            "the model must declare the shape of output 'y'"]


def case_strings_normalizer_bad_case_action(d):
    m = model([helper.make_node("StringNormalizer", ["x"], ["y"], name="norm0",
                                case_change_action="TITLE")],
              [strings_in("x", [4])], [strings_in("y", [4])], opset=10)
    return save(m, d), [], ["node 'norm0' (StringNormalizer",
                            "case_change_action 'TITLE' is not LOWER, UPPER or NONE"]


def case_strings_arithmetic_refused(d):
    m = model([helper.make_node("Add", ["x", "x"], ["y"], name="add0")],
              [strings_in("x", [2])], [strings_in("y", [2])])
    return save(m, d), [], ["node 'add0' (Add", "element type string, which Add does not support"]


def case_strings_label_encoder_lengths_differ(d):
    node = helper.make_node("LabelEncoder", ["x"], ["y"], name="enc0", domain="ai.onnx.ml",
                            keys_strings=["a", "b", "c"], values_int64s=[1, 2])
    graph = helper.make_graph([node], "bad", [strings_in("x", [3])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [3])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                helper.make_opsetid("ai.onnx.ml", 2)])
    return save(m, d), [], ["node 'enc0' (ai.onnx.ml.LabelEncoder", "3 keys but 2 values"]


def case_strings_initializer_with_nul(d):
    names = helper.make_tensor("names", S, [2], [b"ok", b"a\x00b"])
    m = model([helper.make_node("Identity", ["names"], ["y"], name="id0")], [],
              [strings_in("y", [2])], [names])
    return save(m, d), [], ["initializer 'names'", "string element 1 holds a NUL byte"]


def case_strings_on_cuda(d):
    return save(concat_model(), d), ["--target", "cuda-sm80"], [
        "the CUDA back end does not compute on string tensors"]


def case_strings_on_32_bit_target(d):
    return save(concat_model(), d), ["--target", "cortex-m4"], [
        "string tensors", "need a target with 64-bit pointers"]


def case_strings_bytes_exceeded_at_run_time(d):
    """--string-bytes 8: "abc.com" fits (8 bytes with its NUL), "def.net" does not."""
    data_dir = os.path.join(d, "test_data_set_0")
    os.mkdir(data_dir)
    for name, value in [("input_0", ["abc", "def"]), ("input_1", [".com", ".net"])]:
        t = helper.make_tensor(name, S, [2], [v.encode() for v in value])
        with open(os.path.join(data_dir, name + ".pb"), "wb") as f:
            f.write(t.SerializeToString())
    out = helper.make_tensor("output_0", S, [2], [b"abc.com", b"def.net"])
    with open(os.path.join(data_dir, "output_0.pb"), "wb") as f:
        f.write(out.SerializeToString())
    return save(concat_model(), d), ["check", "--string-bytes", "8"], [
        "predict returned error code -6", "KILN_E_STRING_BYTES"]


def case_loop_scan_output_declared_as_sequence(d):
    """A Loop of run-time trip count whose scan output the graph declares as a sequence (fuzz:
    the declared length was read from the wrong member of TypeProto's union)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["s"])], "body",
        [tensor_in("i", []), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), tensor_in("s", [2])])
    body.node.append(helper.make_node("Identity", ["c"], ["c_out"]))
    g = helper.make_graph(
        [helper.make_node("Loop", ["m", ""], ["ys"], name="loop0", body=body)], "g",
        [tensor_in("x", [2]), helper.make_tensor_value_info("m", TensorProto.INT64, [])],
        [helper.make_tensor_sequence_value_info("ys", TensorProto.FLOAT, [3, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return save(m, d), [], ["node 'loop0' (Loop, opset 17)", "no scan output declares its length"]


def case_gradient_through_softmax(d):
    """Gradient over a path through Softmax, which kiln does not differentiate."""
    g = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["s"], name="soft0"),
         helper.make_node("Gradient", ["x"], ["dx"], name="grad0",
                          domain="ai.onnx.preview.training", xs=["x"], y="s")],
        "g", [tensor_in("x", [2, 3])], [tensor_in("s", [2, 3]), tensor_in("dx", [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("ai.onnx.preview.training", 1)])
    return save(m, d), [], ["node 'grad0' (ai.onnx.preview.training.Gradient",
                            "node 'soft0' (Softmax) lies between an x "
                            "and y"]


def case_gradient_through_second_output(d):
    """y is Split's second output: refused (not differentiated as if y did not depend on x)."""
    g = helper.make_graph(
        [helper.make_node("Split", ["x"], ["p", "q"], name="split0", axis=0, num_outputs=2),
         helper.make_node("Gradient", ["x"], ["dx"], name="grad0",
                          domain="ai.onnx.preview.training", xs=["x"], y="q")],
        "g", [tensor_in("x", [4])], [tensor_in("q", [2]), tensor_in("dx", [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18),
                                            helper.make_opsetid("ai.onnx.preview.training", 1)])
    return save(m, d), [], ["node 'grad0' (ai.onnx.preview.training.Gradient",
                            "node 'split0' (Split) lies between an x and y"]


def split_model(width, **attrs):
    """StringSplit of x [2], substrings declared [2, width] (None: not declared)."""
    return model([helper.make_node("StringSplit", ["x"], ["y", "n"], name="split0", **attrs)],
                 [strings_in("x", [2])],
                 [strings_in("y", None if width is None else [2, width]),
                  tensor_in("n", [2])], opset=20)


def case_strings_split_undeclared_width(d):
    return save(split_model(None, delimiter="."), d), [], [
        "node 'split0' (StringSplit", "must declare output 'y'", "the most substrings"]


def case_strings_split_declared_past_maxsplit(d):
    return save(split_model(4, maxsplit=2), d), [], [
        "node 'split0' (StringSplit", "declared with 4 substrings", "maxsplit 2"]


def case_strings_split_width_differs_at_run_time(d):
    """y declared [2, 3]; "a.b" and "c" cut into 2 and 1 substrings: KILN_E_SHAPE."""
    data_dir = os.path.join(d, "test_data_set_0")
    os.mkdir(data_dir)
    tensors = [("input_0", helper.make_tensor("x", S, [2], [b"a.b", b"c"])),
               ("output_0", helper.make_tensor("y", S, [2, 3], [b"a", b"b", b"", b"c", b"", b""])),
               ("output_1", numpy_helper.from_array(np.array([2, 1], np.int64), "n"))]
    for name, t in tensors:
        with open(os.path.join(data_dir, name + ".pb"), "wb") as f:
            f.write(t.SerializeToString())
    return save(split_model(3, delimiter="."), d), ["check"], [
        "predict returned error code -4"]


def regex_model(pattern, x_type=S):
    """RegexFullMatch of x [2] (strings unless x_type says) against `pattern` (None: absent)."""
    attrs = {} if pattern is None else {"pattern": pattern}
    return model([helper.make_node("RegexFullMatch", ["x"], ["y"], name="regex0", **attrs)],
                 [helper.make_tensor_value_info("x", x_type, [2])],
                 [helper.make_tensor_value_info("y", TensorProto.BOOL, [2])], opset=20)


def case_regex_unbalanced_parenthesis(d):
    return save(regex_model("(ab|c"), d), [], [
        "node 'regex0' (RegexFullMatch", 'pattern "(ab|c"',
        "missing ')' to close the group that opens at byte 0"]


def case_regex_unsupported_unicode_class(d):
    return save(regex_model(r"x\p{Greek}+"), d), [], [
        "node 'regex0' (RegexFullMatch", "'\\p{Greek}'", "not supported"]


def case_regex_unsupported_case_folding(d):
    return save(regex_model("(?i)abc"), d), [], [
        "node 'regex0' (RegexFullMatch", "case-insensitive", "not supported"]


def case_regex_dfa_past_state_limit(d):
    """The 13th letter from the end: 2^13 DFA states, past kiln's 4096."""
    return save(regex_model("(a|b)*a(a|b){12}"), d), [], [
        "node 'regex0' (RegexFullMatch", "more than 4096 states"]


def case_regex_input_not_strings(d):
    return save(regex_model("a+", F), d), [], [
        "node 'regex0' (RegexFullMatch", "must be a string tensor, not float32"]


def case_regex_without_pattern(d):
    return save(regex_model(None), d), [], [
        "node 'regex0' (RegexFullMatch", "needs the string attribute 'pattern'"]


CASES = [(name[len("case_"):], fn) for name, fn in sorted(globals().items())
         if name.startswith("case_")] + fuzz_cases()


def check_case(kiln, name, make):
    """Run one case; return a list of problems (empty: passed)."""
    root = tempfile.mkdtemp(prefix="kiln-bad-")
    try:
        model_dir = os.path.join(root, "model")
        out_dir = os.path.join(root, "out")
        os.mkdir(model_dir)
        os.mkdir(out_dir)
        path, args, fragments = make(model_dir)
        if args[:1] == ["check"]:  # a data-set case: `kiln check` reads what is broken
            cmd = [kiln, "check", path] + args[1:]
        else:
            cmd = [kiln, "compile", path, "-o", os.path.join(out_dir, "model.o")] + args
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if fragments == ["compiles"]:  # a fuzz regression that is a valid model
            ok = r.returncode == 0 and os.path.exists(os.path.join(out_dir, "model.o"))
            return [] if ok else [f"exit status {r.returncode}, expected 0 and an object",
                                  "stderr was: " + (r.stderr.strip() or "(empty)")]
        problems = []
        if r.returncode != 1:
            problems.append(f"exit status {r.returncode}, expected 1")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected one message")
        for fragment in [path] + fragments:
            if fragment not in r.stderr:
                problems.append(f"stderr lacks {fragment!r}")
        left = os.listdir(out_dir)
        if left:
            problems.append(f"left behind: {', '.join(sorted(left))}")
        if problems:
            problems.append("stderr was: " + (r.stderr.strip() or "(empty)"))
        return problems
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    kiln = os.path.abspath(sys.argv[1])
    passed = failed = 0
    for name, make in CASES:
        try:
            problems = check_case(kiln, name, make)
        except Exception as e:  # a case that cannot even run is a failure, not a crash
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"PASS {name}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
