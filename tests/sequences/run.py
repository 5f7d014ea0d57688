#!/usr/bin/env python3
"""Sequences and optionals end to end: models written with onnx's helpers, expected outputs
computed here with numpy (from the operators' definitions), checked with `kiln check` at the
default target (or the one given with --target). kiln compiles sequences away (ops/sequence.c);
these cases cover what the ONNX backend tests do not.

Usage: run.py KILN [--target T] [--sanitize address]   (tests/onnx_python.sh finds a Python with onnx)

Cases:
  concat_new_axis      ConcatFromSequence with new_axis=1 and negative axes (-1: last, -3:
                       first of the rank+1 result), and with new_axis=0.
  split_scalar         SplitToSequence with a constant scalar split that leaves a shorter last
                       piece, SequenceAt(-1), SequenceErase(0) + ConcatFromSequence, and
                       keepdims=0 (ignored when split is given: ONNX's rule).
  if_runtime           If(c) whose branches give sequences of two tensors each: SequenceAt
                       and SequenceLength of the result; data sets with c true and c false.
  loop_insert          Loop (trip count 3) appending x * i to a sequence carried from
                       SequenceEmpty, then ConcatFromSequence(new_axis=1).
  optional_tensor      Optional(x): OptionalHasElement is true, OptionalGetElement gives x;
                       Optional() of no input: OptionalHasElement is false.
  sequence_map         SequenceMap over sequences the graph builds (SplitToSequence with
                       split sizes, SequenceConstruct) and a tensor input, two body outputs
                       (an arithmetic result, the piece's Shape): ConcatFromSequence and
                       SequenceAt of the results.
  sequence_map_lengths SequenceMap over sequences of 2 and 3 tensors: refused, naming both.
  loop_over_length     Loop whose trip count is the SequenceLength of a sequence the graph
                       builds (known when the model loads), reading SequenceAt(i) each step.
  if_left_out          a run-time If whose else-branch reads past the end of its sequence:
                       that branch is left out; c true passes, c false makes predict return
                       KILN_E_UNCOMPILED_BRANCH (-5).
  runtime_positions    SequenceAt, SequenceErase (int64 scalar position) and SequenceInsert
                       (int32 [1] position) at positions given at run time, over tensors of
                       one shape: three data sets (negative positions, the front, the end);
                       a position out of range makes predict return
                       KILN_E_INDEX_OUT_OF_RANGE (-3), one past each end for each operator.
  runtime_positions_shapes  a run-time position over tensors of different shapes: `kiln
                       compile` refuses it, naming both and the input the position is (kiln
                       check would compile for the data set's value of it: --value).
Prints one line per case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from case_files import check_options, run_check, write_model, write_set  # noqa: E402

F = TensorProto.FLOAT
B = TensorProto.BOOL
I64 = TensorProto.INT64


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def run_compile(kiln, path, extra):
    """`kiln compile` of one model into its folder: (exit status, its messages)."""
    out = os.path.join(os.path.dirname(path), "model.o")
    r = subprocess.run([kiln, "compile", path, "-o", out] + extra, capture_output=True,
                       text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def write_case(root, name, model, sets):
    """model.onnx and test_data_set_K/{input,output}_I.pb under root/name."""
    d, path = write_model(root, name, model)
    for k, (inputs, outputs) in enumerate(sets):
        write_set(os.path.join(d, f"test_data_set_{k}"), model, inputs, outputs)
    return path


def make_model(nodes, inputs, outputs, opset=18, initializers=()):
    g = helper.make_graph(nodes, "sequences", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


X = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
Y = X * 3 + 1
Z = -X


def case_concat_new_axis(root):
    n = [helper.make_node("SequenceConstruct", ["x", "y", "z"], ["s"], name="construct"),
         helper.make_node("ConcatFromSequence", ["s"], ["last"], axis=-1, new_axis=1,
                          name="cat_last"),
         helper.make_node("ConcatFromSequence", ["s"], ["first"], axis=-3, new_axis=1,
                          name="cat_first"),
         helper.make_node("ConcatFromSequence", ["s"], ["joined"], axis=-1, name="cat_join")]
    m = make_model(n, [vi("x", F, [2, 3]), vi("y", F, [2, 3]), vi("z", F, [2, 3])],
                   [vi("last", F, [2, 3, 3]), vi("first", F, [3, 2, 3]),
                    vi("joined", F, [2, 9])])
    outs = [np.stack([X, Y, Z], axis=-1), np.stack([X, Y, Z], axis=0),
            np.concatenate([X, Y, Z], axis=-1)]
    return write_case(root, "concat_new_axis", m, [([X, Y, Z], outs)])


def case_split_scalar(root):
    a = np.arange(10, dtype=np.float32).reshape(5, 2)
    n = [helper.make_node("SplitToSequence", ["a", "two"], ["s"], axis=0, keepdims=0,
                          name="split"),
         helper.make_node("SequenceAt", ["s", "minus_one"], ["tail"], name="at_tail"),
         helper.make_node("SequenceErase", ["s", "zero"], ["rest"], name="erase_first"),
         helper.make_node("ConcatFromSequence", ["rest"], ["joined"], axis=0, name="cat"),
         helper.make_node("SequenceLength", ["s"], ["count"], name="length")]
    m = make_model(n, [vi("a", F, [5, 2])],
                   [vi("tail", F, [1, 2]), vi("joined", F, [3, 2]), vi("count", I64, [])],
                   initializers=[const("two", np.array(2, np.int64)),
                                 const("minus_one", np.array(-1, np.int64)),
                                 const("zero", np.array(0, np.int32))])
    return write_case(root, "split_scalar", m,
                      [([a], [a[4:], a[2:], np.array(3, np.int64)])])


def case_if_runtime(root):
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["x2"], name="mul_then"),
         helper.make_node("SequenceConstruct", ["x", "x2"], ["then_s"], name="seq_then")],
        "then", [], [helper.make_tensor_sequence_value_info("then_s", F, [2, 3])])
    else_g = helper.make_graph(
        [helper.make_node("Add", ["x", "hundred"], ["x100"], name="add_else"),
         helper.make_node("SequenceEmpty", [], ["empty"], dtype=F, name="empty_else"),
         helper.make_node("SequenceInsert", ["empty", "x"], ["one"], name="insert_x"),
         helper.make_node("SequenceInsert", ["one", "x100", "one_i"], ["else_s"],
                          name="insert_x100")],
        "else", [], [helper.make_tensor_sequence_value_info("else_s", F, [2, 3])])
    n = [helper.make_node("If", ["c"], ["s"], name="if0", then_branch=then_g,
                          else_branch=else_g),
         helper.make_node("SequenceAt", ["s", "one_i"], ["second"], name="at_second"),
         helper.make_node("SequenceLength", ["s"], ["count"], name="length")]
    m = make_model(n, [vi("c", B, []), vi("x", F, [2, 3])],
                   [vi("second", F, [2, 3]), vi("count", I64, [])],
                   initializers=[const("two", np.array(2, np.float32)),
                                 const("hundred", np.array(100, np.float32)),
                                 const("one_i", np.array(1, np.int64))])
    sets = [([np.array(True), X], [2 * X, np.array(2, np.int64)]),
            ([np.array(False), X], [X + 100, np.array(2, np.int64)])]
    return write_case(root, "if_runtime", m, sets)


def case_loop_insert(root):
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_f"], to=F, name="cast_i"),
         helper.make_node("Mul", ["x", "i_f"], ["step"], name="mul_step"),
         helper.make_node("SequenceInsert", ["s_in", "step"], ["s_out"], name="append"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="pass_cond")],
        "body", [vi("i", I64, []), vi("c_in", B, []),
                 helper.make_tensor_sequence_value_info("s_in", F, [2])],
        [vi("c_out", B, []), helper.make_tensor_sequence_value_info("s_out", F, [2])])
    n = [helper.make_node("SequenceEmpty", [], ["s0"], dtype=F, name="empty"),
         helper.make_node("Loop", ["M", "", "s0"], ["s"], name="loop0", body=body),
         helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0, new_axis=1, name="cat")]
    m = make_model(n, [vi("x", F, [2])], [vi("y", F, [3, 2])],
                   initializers=[const("M", np.array(3, np.int64))])
    x = np.array([1.5, -2], np.float32)
    return write_case(root, "loop_insert", m, [([x], [np.stack([x * i for i in range(3)])])])


def case_optional_tensor(root):
    n = [helper.make_node("Optional", ["x"], ["o"], name="wrap"),
         helper.make_node("OptionalHasElement", ["o"], ["has"], name="has"),
         helper.make_node("OptionalGetElement", ["o"], ["got"], name="get"),
         helper.make_node("Relu", ["got"], ["y"], name="relu"),
         helper.make_node("Optional", [], ["none"], name="nothing",
                          type=helper.make_tensor_type_proto(F, [2, 3])),
         helper.make_node("OptionalHasElement", ["none"], ["has_none"], name="has_none")]
    m = make_model(n, [vi("x", F, [2, 3])],
                   [vi("has", B, []), vi("y", F, [2, 3]), vi("has_none", B, [])])
    return write_case(root, "optional_tensor", m,
                      [([X], [np.array(True), np.maximum(X, 0), np.array(False)])])


def sequence_map_model(split):
    body = helper.make_graph(
        [helper.make_node("Mul", ["p", "q"], ["pq"], name="mul_pq"),
         helper.make_node("Add", ["pq", "k"], ["out"], name="add_k"),
         helper.make_node("Shape", ["p"], ["shape"], name="shape_p")],
        "map_body", [vi("p", F, ["n", 2]), vi("q", F, [1, 2]), vi("k", F, [])],
        [vi("out", F, ["n", 2]), vi("shape", I64, [2])])
    n = [helper.make_node("SplitToSequence", ["a", "sizes"], ["s"], axis=0, name="split"),
         helper.make_node("SequenceConstruct", ["x", "y"], ["t"], name="construct"),
         helper.make_node("SequenceMap", ["s", "t", "k"], ["outs", "shapes"], name="map",
                          body=body),
         helper.make_node("ConcatFromSequence", ["outs"], ["joined"], axis=0, name="cat"),
         helper.make_node("SequenceAt", ["shapes", "one"], ["second_shape"], name="at_second")]
    return make_model(n, [vi("a", F, [5, 2]), vi("x", F, [1, 2]), vi("y", F, [1, 2]),
                          vi("k", F, [])],
                      [vi("joined", F, [5, 2]), vi("second_shape", I64, [2])],
                      initializers=[const("sizes", np.array(split, np.int64)),
                                    const("one", np.array(1, np.int64))])


def case_sequence_map(root):
    a = np.arange(10, dtype=np.float32).reshape(5, 2) - 4
    x, y, k = np.array([[2, -1]], np.float32), np.array([[0.5, 3]], np.float32), np.float32(7)
    joined = np.concatenate([a[:2] * x + k, a[2:] * y + k])
    return write_case(root, "sequence_map", sequence_map_model([2, 3]),
                      [([a, x, y, np.array(k)], [joined, np.array([3, 2], np.int64)])])


def case_sequence_map_lengths(root):
    a = np.zeros((5, 2), np.float32)
    x = np.zeros((1, 2), np.float32)
    return write_case(root, "sequence_map_lengths", sequence_map_model([1, 2, 2]),
                      [([a, x, x, np.array(0, np.float32)],
                        [np.zeros((5, 2), np.float32), np.array([2, 2], np.int64)])])


def case_loop_over_length(root):
    body = helper.make_graph(
        [helper.make_node("SequenceAt", ["s", "i"], ["item"], name="at_i"),
         helper.make_node("Mul", ["item", "two"], ["twice"], name="mul_two"),
         helper.make_node("SequenceInsert", ["acc_in", "twice"], ["acc_out"], name="append"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="pass_cond")],
        "body", [vi("i", I64, []), vi("c_in", B, []),
                 helper.make_tensor_sequence_value_info("acc_in", F, [2, 3])],
        [vi("c_out", B, []), helper.make_tensor_sequence_value_info("acc_out", F, [2, 3])])
    n = [helper.make_node("SequenceConstruct", ["x", "y", "z"], ["s"], name="construct"),
         helper.make_node("SequenceLength", ["s"], ["len"], name="length"),
         helper.make_node("SequenceEmpty", [], ["acc0"], dtype=F, name="empty"),
         helper.make_node("Loop", ["len", "", "acc0"], ["acc"], name="loop0", body=body),
         helper.make_node("ConcatFromSequence", ["acc"], ["y2"], axis=0, new_axis=1,
                          name="cat")]
    m = make_model(n, [vi("x", F, [2, 3]), vi("y", F, [2, 3]), vi("z", F, [2, 3])],
                   [vi("y2", F, [3, 2, 3])],
                   initializers=[const("two", np.array(2, np.float32))])
    return write_case(root, "loop_over_length", m, [([X, Y, Z], [np.stack([2 * X, 2 * Y, 2 * Z])])])


def case_if_left_out(root, data_set):
    # else: SequenceAt past the end of its sequence: that branch cannot be compiled and is
    # left out (KILN_E_UNCOMPILED_BRANCH when the inputs take it), the then-branch runs
    def branch(side, position):
        return helper.make_graph(
            [helper.make_node("SequenceConstruct", ["x"], [side + "_s"], name="seq_" + side),
             helper.make_node("SequenceAt", [side + "_s", position], [side + "_y"],
                              name="at_" + side)],
            side, [], [vi(side + "_y", F, [2, 3])])
    n = [helper.make_node("If", ["c"], ["y"], name="if0", then_branch=branch("then", "zero"),
                          else_branch=branch("else", "five"))]
    m = make_model(n, [vi("c", B, []), vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                   initializers=[const("zero", np.array(0, np.int64)),
                                 const("five", np.array(5, np.int64))])
    sets = [([np.array(True), X], [X]), ([np.array(False), X], [X])]
    return write_case(root, f"if_left_out_{data_set}", m, [sets[data_set]])


def runtime_positions_model(shapes=((2, 3), (2, 3), (2, 3))):
    n = [helper.make_node("SequenceConstruct", ["x", "y", "z"], ["s"], name="construct"),
         helper.make_node("SequenceAt", ["s", "p"], ["at"], name="at_p"),
         helper.make_node("SequenceErase", ["s", "p"], ["rest"], name="erase_p"),
         helper.make_node("ConcatFromSequence", ["rest"], ["erased"], axis=0, new_axis=1,
                          name="cat_erased"),
         helper.make_node("SequenceInsert", ["s", "w", "q"], ["more"], name="insert_q"),
         helper.make_node("ConcatFromSequence", ["more"], ["inserted"], axis=0, new_axis=1,
                          name="cat_inserted")]
    return make_model(n, [vi("x", F, list(shapes[0])), vi("y", F, list(shapes[1])),
                          vi("z", F, list(shapes[2])), vi("w", F, [2, 3]), vi("p", I64, []),
                          vi("q", TensorProto.INT32, [1])],
                      [vi("at", F, [2, 3]), vi("erased", F, [2, 2, 3]),
                       vi("inserted", F, [4, 2, 3])])


def runtime_positions_set(p, q):
    items, w = [X, Y, Z], X * 10 - 7
    rest = items[:p] + items[p + 1:] if p != -1 else items[:-1]
    more = list(items)
    more.insert(q, w)  # Python's insert counts a negative position from the end, as ONNX
    return ([X, Y, Z, w, np.array(p, np.int64), np.array([q], np.int32)],
            [items[p], np.stack(rest), np.stack(more)])


def case_runtime_positions(root, name, sets):
    return write_case(root, name, runtime_positions_model(), sets)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--target")
    ap.add_argument("--sanitize")
    a = ap.parse_args()
    extra = check_options(a)
    root = tempfile.mkdtemp(prefix="kiln-sequences-")
    passed = failed = 0
    try:
        cases = [(make.__name__[len("case_"):], lambda make=make: make(root), 0, None)
                 for make in (case_concat_new_axis, case_split_scalar, case_if_runtime,
                              case_loop_insert, case_optional_tensor, case_sequence_map,
                              case_loop_over_length)]
        cases += [("sequence_map_lengths", lambda: case_sequence_map_lengths(root), 1,
                   "input 't' holds 2 tensors, input 's' 3")]
        cases += [("if_left_out taken branch", lambda: case_if_left_out(root, 0), 0, None),
                  ("if_left_out branch left out", lambda: case_if_left_out(root, 1), 1,
                   "error code -5")]
        ok_sets = [runtime_positions_set(p, q) for p, q in ((-1, -2), (0, 0), (2, 3), (-3, -3))]
        cases += [("runtime_positions", lambda: case_runtime_positions(root, "runtime_positions", ok_sets), 0, None)]
        for k, (p, q) in enumerate(((3, 0), (-4, 0), (0, 4), (0, -4))):
            inputs, outputs = runtime_positions_set(0, 0)
            inputs[4], inputs[5] = np.array(p, np.int64), np.array([q], np.int32)
            cases += [(f"runtime_positions p={p} q={q} out of range",
                       lambda k=k, inputs=inputs, outputs=outputs:
                       case_runtime_positions(root, f"runtime_positions_bad{k}",
                                              [(inputs, outputs)]), 1, "error code -3")]
        cases += [("runtime_positions_shapes", lambda: write_case(
            root, "runtime_positions_shapes",
            runtime_positions_model(((2, 3), (2, 3), (3, 2))),
            [([X, Y, Z.reshape(3, 2)] + runtime_positions_set(0, 0)[0][3:],
              runtime_positions_set(0, 0)[1])]), 1,
            "'x' is float32 [2,3] and 'z' is float32 [3,2]", run_compile)]
        for name, make, want_rc, want_text, *how in cases:
            rc, out = (how or [run_check])[0](os.path.abspath(a.kiln), make(), extra)
            ok = rc == want_rc and (out.rstrip().endswith("PASS") if want_rc == 0
                                    else want_text in out)
            print(f"{'PASS' if ok else 'FAIL'} {name}")
            if not ok:
                print("     " + out.strip().replace("\n", "\n     "))
            passed, failed = passed + ok, failed + (not ok)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
