#!/usr/bin/env python3
"""Control flow end to end: If and Scan models written with onnx's helpers, expected outputs
computed here with numpy (from the operators' definitions), checked with `kiln check` at the
default target (or the one given with --target).

Usage: run.py KILN [--target T] [--sanitize address]   (tests/onnx_python.sh finds a Python with onnx)

Cases (each one model, one or two data sets):
  if_runtime        If(c) over x: then 2x, else x + 100; data sets with c true and c false, so
                    both branches' kernels run and are skipped.
  if_nested_folded  an If inside the then-branch whose condition is computed from a shape
                    (folded when compiling: only its taken branch is compiled).
  if_on_size        If(Size(x) == 6) whose branches give different shapes: Size is known once
                    x's shape is, so the condition folds and only the then-branch is compiled
                    (as in AffineGrid's expansion).
  if_lengths_*      If(c) whose branches give x [2,3] and x joined with w: along dim 0 ([4,3]:
                    a Relu of it follows the length the condition picks), along dim 1 ([2,5]:
                    a graph output, written densely at [2,3] or [2,5]), and an output [1] in one
                    branch and [0] in the other (AffineGrid's expansion); c true and c false.
  if_left_out       the else-branch cannot be compiled for the bound shapes: a data set with c
                    true passes; with c false predict returns KILN_E_UNCOMPILED_BRANCH (-5).
  scan_directions   Scan (opset 11) with a reversed scan input, a reversed scan output stacked
                    along axis 1 and two states.
  loop_*            Loop (opset 13, trip count an initializer): a condition that stays true
                    (folded: straight-line code), one the body computes that ends the loop early
                    at run time, a false condition from the start, scan outputs over every
                    iteration, and scan outputs of a loop that ends early (predict returns
                    KILN_E_UNCOMPILED_BRANCH: their length would depend on the inputs); and a
                    trip count given at run time, unrolled to the scan output's declared length:
                    that count passes, fewer or more iterations return KILN_E_UNCOMPILED_BRANCH.
  range_declared_*  a Range of run-time length whose shape comes from the declared output it
                    flows to through shape-keeping operators: that length passes, another
                    returns KILN_E_SHAPE.
  value_bound_*     ConstantOfShape(s) * x with s a graph input and no declared shape: kiln
                    check compiles for the first data set's value of s (or the one --value
                    gives) and says so; a data set holding another s returns KILN_E_SHAPE.
Prints one line per case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import os
import shutil
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


def write_case(root, name, model, sets):
    """model.onnx and test_data_set_K/{input,output}_I.pb under root/name."""
    d, path = write_model(root, name, model)
    for k, (inputs, outputs) in enumerate(sets):
        write_set(os.path.join(d, f"test_data_set_{k}"), model, inputs, outputs)
    return path


def make_model(nodes, inputs, outputs, opset=13, initializers=()):
    g = helper.make_graph(nodes, "control", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def if_node(cond, out, then_nodes, then_out, else_nodes, else_out, name):
    t = helper.make_graph(then_nodes, name + "_then", [], [then_out])
    e = helper.make_graph(else_nodes, name + "_else", [], [else_out])
    return helper.make_node("If", [cond], [out], name=name, then_branch=t, else_branch=e)


X = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5


def case_if_runtime(root):
    two = numpy_helper.from_array(np.array(2, np.float32), "two")
    hundred = numpy_helper.from_array(np.array(100, np.float32), "hundred")
    n = if_node("c", "y",
                [helper.make_node("Mul", ["x", "two"], ["a"], name="mul_then")],
                vi("a", F, [2, 3]),
                [helper.make_node("Add", ["x", "hundred"], ["b"], name="add_else")],
                vi("b", F, [2, 3]), "if0")
    m = make_model([n], [vi("c", B, []), vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                   initializers=[two, hundred])
    sets = [([np.array(True), X], [2 * X]), ([np.array(False), X], [X + 100])]
    return write_case(root, "if_runtime", m, sets), 0


def case_if_nested_folded(root):
    # then: y = If(Shape(x)[0] == 2) { Neg(x) } else { Gather(x, [7]) }: the inner condition is
    # true once x's shape is known, and the else-branch (which would fail) is never compiled
    seven = numpy_helper.from_array(np.array([7], np.int64), "seven")
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    two = numpy_helper.from_array(np.array(2, np.int64), "two_i")
    inner = if_node("inner_c", "inner_y",
                    [helper.make_node("Neg", ["x"], ["neg"], name="neg_inner")],
                    vi("neg", F, None),
                    [helper.make_node("Gather", ["x", "seven"], ["bad"], name="gather_inner")],
                    vi("bad", F, None), "if_inner")
    then_nodes = [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
                  helper.make_node("Gather", ["shape", "zero"], ["rows"], name="rows"),
                  helper.make_node("Equal", ["rows", "two_i"], ["inner_c"], name="eq"),
                  inner]
    outer = if_node("c", "y", then_nodes, vi("inner_y", F, None),
                    [helper.make_node("Identity", ["x"], ["same"], name="id_else")],
                    vi("same", F, None), "if_outer")
    m = make_model([outer], [vi("c", B, []), vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                   initializers=[seven, zero, two])
    sets = [([np.array(True), X], [-X]), ([np.array(False), X], [X])]
    return write_case(root, "if_nested_folded", m, sets), 0


def case_if_on_size(root):
    six = numpy_helper.from_array(np.array(6, np.int64), "six")
    flat = numpy_helper.from_array(np.array([6], np.int64), "flat")
    n = [helper.make_node("Size", ["x"], ["count"], name="size"),
         helper.make_node("Equal", ["count", "six"], ["is_six"], name="eq"),
         if_node("is_six", "y",
                 [helper.make_node("Neg", ["x"], ["neg"], name="neg_then")], vi("neg", F, None),
                 [helper.make_node("Reshape", ["x", "flat"], ["row"], name="flat_else")],
                 vi("row", F, None), "if0")]
    m = make_model(n, [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], initializers=[six, flat])
    return write_case(root, "if_on_size", m, [([X], [-X])]), 0


def case_if_lengths(root, c):
    w = numpy_helper.from_array(np.full((2, 3), 7, np.float32), "w")
    one = numpy_helper.from_array(np.array([5], np.int64), "one_item")
    none = numpy_helper.from_array(np.zeros(0, np.int64), "no_item")
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["a"], name="id_then"),
                               helper.make_node("Identity", ["x"], ["a2"], name="id2_then"),
                               helper.make_node("Identity", ["one_item"], ["p"], name="p_then")],
                               "then", [], [vi("a", F, None), vi("a2", F, None),
                                            vi("p", I64, None)])
    else_g = helper.make_graph([helper.make_node("Concat", ["x", "w"], ["b"], axis=0,
                                                 name="rows_else"),
                                helper.make_node("Concat", ["x", "w"], ["b2"], axis=1,
                                                 name="cols_else"),
                                helper.make_node("Identity", ["no_item"], ["q"], name="q_else")],
                               "else", [], [vi("b", F, None), vi("b2", F, None),
                                            vi("q", I64, None)])
    n = [helper.make_node("If", ["c"], ["y", "wide", "items"], name="if0", then_branch=then_g,
                          else_branch=else_g),
         helper.make_node("Relu", ["y"], ["r"], name="relu0")]
    m = make_model(n, [vi("c", B, []), vi("x", F, [2, 3])],
                   [vi("wide", F, None), vi("items", I64, None), vi("r", F, None)],
                   initializers=[w, one, none])
    sevens = np.full((2, 3), 7, np.float32)
    y = X if c else np.concatenate([X, sevens], axis=0)
    wide = X if c else np.concatenate([X, sevens], axis=1)
    items = np.array([5] if c else [], np.int64)
    return write_case(root, f"if_lengths_{int(c)}", m,
                      [([np.array(c), X], [wide, items, np.maximum(y, 0)])]), 0


def case_if_left_out(root, data_set):
    w = numpy_helper.from_array(np.ones((4, 5), np.float32), "w")
    n = if_node("c", "y",
                [helper.make_node("Relu", ["x"], ["a"], name="relu_then")], vi("a", F, None),
                [helper.make_node("Add", ["x", "w"], ["b"], name="add_else")], vi("b", F, None),
                "if0")
    m = make_model([n], [vi("c", B, []), vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                   initializers=[w])
    sets = [([np.array(True), X], [np.maximum(X, 0)]), ([np.array(False), X], [X])]
    return write_case(root, f"if_left_out_{data_set}", m, [sets[data_set]]), data_set


def case_scan_directions(root):
    # states: sum and product; scan input x [2, 4] scanned along axis 1 in reverse; scan
    # output z (the running sum) stacked along axis 1, reversed
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "next"], ["s_out"], name="add_body"),
         helper.make_node("Mul", ["p_in", "next"], ["p_out"], name="mul_body"),
         helper.make_node("Identity", ["s_out"], ["z_out"], name="id_body")], "body",
        [vi("s_in", F, [2]), vi("p_in", F, [2]), vi("next", F, [2])],
        [vi("s_out", F, [2]), vi("p_out", F, [2]), vi("z_out", F, [2])])
    n = helper.make_node("Scan", ["s0", "p0", "x"], ["s", "p", "z"], name="scan0", body=body,
                         num_scan_inputs=1, scan_input_axes=[1], scan_input_directions=[1],
                         scan_output_axes=[1], scan_output_directions=[1])
    m = make_model([n], [vi("s0", F, [2]), vi("p0", F, [2]), vi("x", F, [2, 4])],
                   [vi("s", F, [2]), vi("p", F, [2]), vi("z", F, [2, 4])], opset=11)
    x = (np.arange(8, dtype=np.float32).reshape(2, 4) + 1) / 4
    s0, p0 = np.array([1, -1], np.float32), np.array([1, 2], np.float32)
    s, p, zs = s0.copy(), p0.copy(), []
    for t in reversed(range(4)):
        s, p = s + x[:, t], p * x[:, t]
        zs.append(s)
    z = np.stack(zs[::-1], axis=1)
    return write_case(root, "scan_directions", m, [([s0, p0, x], [s, p, z])]), 0


def loop_model(trips, with_cond, cond_from_body, with_scan, m_at_run_time=False):
    """Loop (opset 13) of y += x * i over x [2]: M an initializer (a graph input when
    m_at_run_time: then z's declared length `trips` is what kiln unrolls), cond a graph input
    (or none), the body's condition y_out[0] < 10 (or the one it got), scan output y_out."""
    nodes = [helper.make_node("Cast", ["i"], ["i_f"], to=F, name="cast_i"),
             helper.make_node("Mul", ["x", "i_f"], ["step"], name="mul_step"),
             helper.make_node("Add", ["y_in", "step"], ["y_out"], name="add_step")]
    if cond_from_body:
        nodes += [helper.make_node("ReduceMax", ["y_out"], ["top"], keepdims=0, name="top"),
                  helper.make_node("Less", ["top", "ten"], ["c_out"], name="less")]
    else:
        nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"], name="pass_cond"))
    outs = [vi("c_out", B, []), vi("y_out", F, [2])]
    if with_scan:
        nodes.append(helper.make_node("Identity", ["y_out"], ["z_out"], name="scan_id"))
        outs.append(vi("z_out", F, [2]))
    body = helper.make_graph(nodes, "body", [vi("i", TensorProto.INT64, []), vi("c_in", B, []),
                                             vi("y_in", F, [2])], outs,
                             [numpy_helper.from_array(np.array(10, np.float32), "ten")])
    loop = helper.make_node("Loop", ["M", "c" if with_cond else "", "y0"],
                            ["y"] + (["z"] if with_scan else []), name="loop0", body=body)
    inputs = (([vi("M", TensorProto.INT64, [])] if m_at_run_time else []) +
              ([vi("c", B, [])] if with_cond else []) + [vi("y0", F, [2]), vi("x", F, [2])])
    outputs = [vi("y", F, [2])] + ([vi("z", F, [trips, 2])] if with_scan else [])
    inits = [] if m_at_run_time else [numpy_helper.from_array(np.array(trips, np.int64), "M")]
    return make_model([loop], inputs, outputs, initializers=inits)


def loop_reference(trips, cond, cond_from_body, y0, x):
    y, zs = y0.copy(), []
    for i in range(trips):
        if not cond:
            break
        y = y + x * np.float32(i)
        zs.append(y)
        cond = bool(y.max() < 10) if cond_from_body else cond
    return y, zs


def case_loop(root, name, trips, with_cond, cond_from_body, with_scan, cond, x, given_m=None):
    """given_m: M is a graph input fed this value (`trips` is z's declared length)."""
    m = loop_model(trips, with_cond, cond_from_body, with_scan, given_m is not None)
    y0 = np.array([0.5, -1], np.float32)
    y, zs = loop_reference(trips if given_m is None else given_m, cond, cond_from_body, y0, x)
    ins = (([np.array(given_m, np.int64)] if given_m is not None else []) +
           ([np.array(cond)] if with_cond else []) + [y0, x])
    outs = [y] + ([np.stack(zs) if len(zs) == trips else np.zeros((trips, 2), np.float32)]
                  if with_scan else [])
    return write_case(root, name, m, [(ins, outs)]), 0


def case_range_declared_downstream(root, n):
    """Range(0, n, 1) with n a graph input, through Mul by a scalar computed from n and a Cast,
    to an output declared [5]: the Range takes its length from there (passes/infer_shapes.c),
    and predict returns KILN_E_SHAPE (-4) when n asks for another."""
    nodes = [helper.make_node("Range", ["zero", "n", "one"], ["r"], name="range0"),
             helper.make_node("Div", ["one", "n"], ["inv"], name="inv_n"),
             helper.make_node("Mul", ["r", "inv"], ["scaled"], name="scale"),
             helper.make_node("Add", ["scaled", "r"], ["sum"], name="sum"),
             helper.make_node("Cast", ["sum"], ["y"], to=TensorProto.DOUBLE, name="cast")]
    m = make_model(nodes, [vi("n", F, [])], [vi("y", TensorProto.DOUBLE, [5])], opset=13,
                   initializers=[numpy_helper.from_array(np.array(0, np.float32), "zero"),
                                 numpy_helper.from_array(np.array(1, np.float32), "one")])
    r = np.arange(5, dtype=np.float32)
    y = (r * (np.float32(1) / np.float32(n)) + r).astype(np.float64)
    return write_case(root, f"range_declared_downstream_{n}", m,
                      [([np.array(n, np.float32)], [y])]), 0


def case_value_bound(root, name, shapes):
    """y = ConstantOfShape(s, 2.0) * x, x [2,3] and s an int64 [2] input: y's shape is s
    broadcast with x's, known only from s's value. One data set per entry of `shapes`."""
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["twos"], name="fill",
                              value=numpy_helper.from_array(np.array([2], np.float32))),
             helper.make_node("Mul", ["twos", "x"], ["y"], name="scale")]
    m = make_model(nodes, [vi("s", I64, [2]), vi("x", F, [2, 3])], [vi("y", F, None)])
    sets = [([np.array(s, np.int64), X], [np.full(s, 2, np.float32) * X]) for s in shapes]
    return write_case(root, name, m, sets), 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--target")
    ap.add_argument("--sanitize")
    a = ap.parse_args()
    extra = check_options(a)
    root = tempfile.mkdtemp(prefix="kiln-control-")
    passed = failed = 0
    try:
        cases = [("if_runtime", lambda: case_if_runtime(root), 0, None),
                 ("if_nested_folded", lambda: case_if_nested_folded(root), 0, None),
                 ("if_on_size", lambda: case_if_on_size(root), 0, None),
                 ("if_lengths_then", lambda: case_if_lengths(root, True), 0, None),
                 ("if_lengths_else", lambda: case_if_lengths(root, False), 0, None),
                 ("if_left_out taken branch", lambda: case_if_left_out(root, 0), 0, None),
                 ("if_left_out branch left out", lambda: case_if_left_out(root, 1), 1,
                  "error code -5"),
                 ("scan_directions", lambda: case_scan_directions(root), 0, None),
                 ("loop_constant_trips", lambda: case_loop(
                     root, "loop_constant_trips", 4, False, False, True, True,
                     np.array([1, 2], np.float32)), 0, None),
                 ("loop_ends_early", lambda: case_loop(
                     root, "loop_ends_early", 6, True, True, False, True,
                     np.array([1, 2], np.float32)), 0, None),
                 ("loop_cond_false", lambda: case_loop(
                     root, "loop_cond_false", 3, True, True, False, False,
                     np.array([1, 2], np.float32)), 0, None),
                 ("loop_scan_all_steps", lambda: case_loop(
                     root, "loop_scan_all_steps", 3, True, True, True, True,
                     np.array([1, 1], np.float32)), 0, None),
                 ("loop_scan_ends_early", lambda: case_loop(
                     root, "loop_scan_ends_early", 6, True, True, True, True,
                     np.array([1, 2], np.float32)), 1, "error code -5"),
                 ("loop_run_time_trips", lambda: case_loop(
                     root, "loop_run_time_trips", 4, False, False, True, True,
                     np.array([1, 2], np.float32), given_m=4), 0, None),
                 ("loop_run_time_trips_fewer", lambda: case_loop(
                     root, "loop_run_time_trips_fewer", 4, False, False, True, True,
                     np.array([1, 2], np.float32), given_m=3), 1, "error code -5"),
                 ("loop_run_time_trips_more", lambda: case_loop(
                     root, "loop_run_time_trips_more", 4, False, False, True, True,
                     np.array([1, 2], np.float32), given_m=6), 1, "error code -5"),
                 ("range_declared_downstream", lambda: case_range_declared_downstream(root, 5),
                  0, None),
                 ("range_declared_downstream_other_length",
                  lambda: case_range_declared_downstream(root, 4), 1, "error code -4"),
                 ("value_bound_from_data", lambda: case_value_bound(
                     root, "value_bound_from_data", [[2, 3]]), 0,
                  "values bound from test_data_set_0 (predict checks them): s"),
                 ("value_bound_other_value", lambda: case_value_bound(
                     root, "value_bound_other_value", [[2, 3], [1, 3]]), 1, "error code -4"),
                 ("value_bound_on_command_line", lambda: case_value_bound(
                     root, "value_bound_on_command_line", [[1, 3]]), 0, None,
                  ["--value", "s:1,3"]),
                 ("value_bound_on_command_line_other_value", lambda: case_value_bound(
                     root, "value_bound_on_command_line_other", [[1, 3]]), 1, "error code -4",
                  ["--value", "s:2,3"])]
        for name, make, want_rc, want_text, *options in cases:
            path, _ = make()
            rc, out = run_check(os.path.abspath(a.kiln), path, extra + sum(options, []))
            ok = rc == want_rc and (want_text is None or want_text in out)
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
