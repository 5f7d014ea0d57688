#!/usr/bin/env python3
"""Data-dependent output lengths against numpy: NonZero, Compress, Unique and NonMaxSuppression
on random data, each model compiled once by `kiln check` and run on three data sets whose
results have different lengths (one of them empty where the operator allows it), compared at
the shape the model reports (run_dynamic).

The data are made to hit what the kernels count (in blocks of sqrt(n) positions: a large
NonZero has many, the last one partial): zeros and repeated values (ties in Unique's
sort order, NaN collapsed), columns a condition shorter than the axis leaves out, and boxes
that overlap above and below the IoU threshold, with tied scores and a score threshold. The
NonMaxSuppression reference follows ONNX Runtime's rules (kiln.h / README).

The length also flows on through the nodes that read such a value (data_dependent_flow.c): the
patterns of exported models, torch.nonzero (NonZero + Transpose), x[mask] (+ GatherND, then
views: Unsqueeze, Squeeze), the
boxes NonMaxSuppression keeps (Gather of a column, then of the boxes), and rows Compress keeps
through Softmax along either axis (the reductions along the varying dim run to the count) and
a MatMul. Split with sizes given at run time and no declared output shapes gives parts of
data-dependent length too (along a leading axis and not); sizes that do not add up to the axis
make predict return KILN_E_SHAPE (-4). So does a Slice along one axis whose end (or start) is a
run-time value and whose output shape nothing declares: x[:, :n] (an output of data-dependent
length after a dim larger than 1, written densely; n past the axis, 0 and negative), and
x[n:] read by a Softmax along the sliced axis. A graph output the length reaches after a dim
larger than 1 is copied densely from the padded layout: NonZero -> Cast ([2, n]), and
Add(nz, nz) (one value read twice). Shape and Size of such a value give the run-time length as
a value (len(boxes)), here through a Gather and a Cast into arithmetic.

Usage: ops.py KILN [--sanitize address] [--target T]   (tests/onnx_python.sh finds a Python
with onnx). Prints one line per case and "N passed, M failed"; exits 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bounded"))
from checks import Tally, run_check  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from case_files import write_model, write_set  # noqa: E402

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
SETS = 3


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model(node, inputs, outputs, opset=13, initializers=()):
    nodes = node if isinstance(node, list) else [node]
    g = helper.make_graph(nodes, "data_dependent", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def case_nonzero(rng, shape=(3, 4, 5)):
    m = model(helper.make_node("NonZero", ["x"], ["y"]), [vi("x", F, list(shape))],
              [vi("y", I64, None)])

    def data(s):
        keep = rng.random(shape) < (0.3, 0.9, 0.0)[s]
        x = np.where(keep, rng.standard_normal(shape), 0).astype(np.float32)
        return [x], [np.array(np.nonzero(x), np.int64)]
    return m, data


def case_compress(rng):
    m = model(helper.make_node("Compress", ["x", "c"], ["y"], axis=1),
              [vi("x", F, [2, 7, 3]), vi("c", B, [5])], [vi("y", F, None)])

    def data(s):
        x = rng.standard_normal((2, 7, 3)).astype(np.float32)
        c = rng.random(5) < (0.5, 1.0, 0.0)[s]
        return [x, c], [np.compress(c, x, axis=1)]
    return m, data


def case_compress_flat(rng):
    m = model(helper.make_node("Compress", ["x", "c"], ["y"]),
              [vi("x", I64, [3, 4]), vi("c", B, [12])], [vi("y", I64, None)])

    def data(s):
        x = rng.integers(-9, 9, (3, 4)).astype(np.int64)
        c = rng.random(12) < (0.4, 0.8, 0.1)[s]
        return [x, c], [np.compress(c, x)]
    return m, data


def unique_outputs(x, axis, is_sorted):
    y, index, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                          return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not is_sorted:  # in order of first occurrence
        order = np.argsort(index, kind="stable")
        y = np.take(y, order, axis=0 if axis is None else axis)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        index, counts, inverse = index[order], counts[order], rank[inverse]
    return [y, index.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]


def case_unique(rng, axis=None, is_sorted=1, shape=(4, 6)):
    node = helper.make_node("Unique", ["x"], ["y", "indices", "inverse", "counts"],
                            sorted=is_sorted, **({} if axis is None else {"axis": axis}))
    m = model(node, [vi("x", F, list(shape))],
              [vi(n, F if n == "y" else I64, None) for n in ("y", "indices", "inverse", "counts")],
              opset=11)

    def data(s):
        levels = (3, 1, 6)[s]  # few values: many repeats
        x = rng.integers(0, levels, shape).astype(np.float32)
        if axis is not None:  # whole slices repeated too
            ax = axis % len(shape)
            picks = rng.integers(0, 2, shape[ax])
            x = np.take(np.take(x, [0, 1], axis=ax), picks, axis=ax)
        return [x], unique_outputs(x, axis, is_sorted)
    return m, data


def iou_over(a, b, threshold, center):
    def span(box, k):
        if center:
            return box[k] - box[k + 2] / 2, box[k] + box[k + 2] / 2
        return min(box[k], box[k + 2]), max(box[k], box[k + 2])
    inter, area_a, area_b = 1.0, 1.0, 1.0
    for k in (0, 1):
        lo_a, hi_a = span(a, k)
        lo_b, hi_b = span(b, k)
        side = min(hi_a, hi_b) - max(lo_a, lo_b)
        if side <= 0:
            return False
        inter, area_a, area_b = inter * side, area_a * (hi_a - lo_a), area_b * (hi_b - lo_b)
    union = area_a + area_b - inter
    if inter <= 0 or area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return np.float32(inter) / np.float32(union) > threshold


def nms_reference(boxes, scores, max_out, iou, score_min, center):
    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = sorted(range(len(s)), key=lambda i: (-s[i], i))
            kept = []
            for i in order:
                if len(kept) >= max_out or (score_min is not None and not s[i] > score_min):
                    continue
                if all(not iou_over(boxes[b, j], boxes[b, i], iou, center) for j in kept):
                    kept.append(i)
            rows += [[b, c, i] for i in kept]
    return np.array(rows, np.int64).reshape(-1, 3)


def case_nms(rng, center=0):
    n = 24
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "smin"],
                            ["sel"], center_point_box=center)
    m = model(node, [vi("boxes", F, [2, n, 4]), vi("scores", F, [2, 3, n]), vi("max", I64, [1]),
                     vi("iou", F, [1]), vi("smin", F, [1])], [vi("sel", I64, None)], opset=11)

    def data(s):
        corner = rng.random((2, n, 2)) * 4
        size = rng.random((2, n, 2)) * 3 + 0.2
        if center:
            boxes = np.concatenate([corner, size], axis=2)
        else:  # corners in either order
            far = corner + size
            boxes = np.concatenate([corner, far], axis=2)
            flip = rng.random((2, n)) < 0.3
            boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
        scores = np.round(rng.random((2, 3, n)), 1)  # ties
        boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
        max_out, iou, smin = ((8, 0.3, 0.2), (n, 0.1, 0.0), (0, 0.5, 0.0))[s]
        want = nms_reference(boxes, scores, max_out, np.float32(iou), np.float32(smin), center)
        return ([boxes, scores, np.array([max_out], np.int64), np.array([iou], np.float32),
                 np.array([smin], np.float32)], [want])
    return m, data


def case_nonzero_transposed(rng):
    m = model([helper.make_node("NonZero", ["x"], ["nz"]),
               helper.make_node("Transpose", ["nz"], ["y"], perm=[1, 0])],
              [vi("x", F, [3, 4, 5])], [vi("y", I64, None)])

    def data(s):
        x = np.where(rng.random((3, 4, 5)) < (0.4, 1.0, 0.0)[s], 1, 0).astype(np.float32)
        return [x], [np.array(np.nonzero(x), np.int64).T.copy()]
    return m, data


def case_masked_select(rng):
    m = model([helper.make_node("NonZero", ["mask"], ["nz"]),
               helper.make_node("Transpose", ["nz"], ["at"], perm=[1, 0]),
               helper.make_node("GatherND", ["x", "at"], ["picked"]),
               helper.make_node("Unsqueeze", ["picked", "axis1"], ["column"]),
               helper.make_node("Mul", ["column", "two"], ["twice"]),
               helper.make_node("Squeeze", ["twice", "axis1"], ["y"])],
              [vi("x", F, [4, 6]), vi("mask", B, [4, 6])], [vi("y", F, None)],
              initializers=[const("two", np.array(2, np.float32)),
                            const("axis1", np.array([1], np.int64))])

    def data(s):
        x = rng.standard_normal((4, 6)).astype(np.float32)
        mask = rng.random((4, 6)) < (0.5, 0.9, 0.0)[s]
        return [x, mask], [x[mask] * 2]
    return m, data


def case_nms_boxes(rng):
    n = 24
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou"], ["sel"]),
             helper.make_node("Gather", ["sel", "two"], ["box_at"], axis=1),
             helper.make_node("Reshape", ["boxes", "rows"], ["all_boxes"]),
             helper.make_node("Gather", ["all_boxes", "box_at"], ["kept"], axis=0),
             helper.make_node("Gather", ["sel", "one"], ["cls"], axis=1),
             helper.make_node("Cast", ["cls"], ["cls_f"], to=F)]
    m = model(nodes, [vi("boxes", F, [1, n, 4]), vi("scores", F, [1, 3, n]),
                      vi("max", I64, [1]), vi("iou", F, [1])],
              [vi("kept", F, None), vi("cls_f", F, None)], opset=13,
              initializers=[const("two", np.array(2, np.int64)),
                            const("one", np.array(1, np.int64)),
                            const("rows", np.array([n, 4], np.int64))])

    def data(s):
        corner = rng.random((1, n, 2)) * 4
        boxes = np.concatenate([corner, corner + rng.random((1, n, 2)) * 3 + 0.2], axis=2)
        boxes = boxes.astype(np.float32)
        scores = np.round(rng.random((1, 3, n)), 1).astype(np.float32)
        max_out, iou = ((5, 0.3), (n, 0.1), (0, 0.5))[s]
        sel = nms_reference(boxes, scores, max_out, np.float32(iou), None, 0)
        return ([boxes, scores, np.array([max_out], np.int64), np.array([iou], np.float32)],
                [boxes[0][sel[:, 2]].reshape(-1, 4), sel[:, 1].astype(np.float32)])
    return m, data


def case_compressed_rows(rng):
    w = rng.standard_normal((5, 3)).astype(np.float32)
    m = model([helper.make_node("Compress", ["x", "c"], ["rows"], axis=0),
               helper.make_node("Softmax", ["rows"], ["along_row"], axis=1),
               helper.make_node("Softmax", ["rows"], ["along_kept"], axis=0),
               helper.make_node("MatMul", ["rows", "w"], ["projected"])],
              [vi("x", F, [7, 5]), vi("c", B, [7])],
              [vi("along_row", F, None), vi("along_kept", F, None), vi("projected", F, None)],
              initializers=[const("w", w)])

    def data(s):
        x = rng.standard_normal((7, 5)).astype(np.float32)
        c = rng.random(7) < (0.5, 1.0, 0.0)[s]
        rows = x[c]
        kept = softmax(rows, 0) if len(rows) else rows
        return [x, c], [softmax(rows, 1), kept, rows @ w]
    return m, data


def split_model(shape, axis):
    return model(helper.make_node("Split", ["x", "sizes"], ["a", "b", "c"], axis=axis),
                 [vi("x", F, list(shape)), vi("sizes", I64, [3])],
                 [vi(y, F, None) for y in "abc"])


def case_split_sizes(rng, shape=(3, 7), axis=1, sizes=((2, 5, 0), (7, 0, 0), (1, 3, 3))):
    def data(s):
        x = rng.standard_normal(shape).astype(np.float32)
        cut = np.cumsum(sizes[s])[:-1]
        return [x, np.array(sizes[s], np.int64)], np.split(x, cut, axis=axis)
    return split_model(shape, axis), data


def case_nonzero_computed_output(rng):
    """NonZero's [2, n] through Cast and through Add(nz, nz): graph outputs whose varying dim
    does not lead, computed padded and copied densely."""
    m = model([helper.make_node("NonZero", ["x"], ["nz"]),
               helper.make_node("Cast", ["nz"], ["as_float"], to=F),
               helper.make_node("Add", ["nz", "nz"], ["doubled"])],
              [vi("x", F, [3, 4])], [vi("as_float", F, None), vi("doubled", I64, None)])

    def data(s):
        x = rng.standard_normal((3, 4)).astype(np.float32)
        x[rng.random((3, 4)) < (0.5, 1.0, 0.0)[s]] = 0
        nz = np.array(np.nonzero(x), np.int64)
        return [x], [nz.astype(np.float32), 2 * nz]
    return m, data


def case_nonzero_shape_size(rng):
    """n = Shape(nz)[1], Size(nz), and x * n: the length as a run-time value."""
    m = model([helper.make_node("NonZero", ["x"], ["nz"]),
               helper.make_node("Shape", ["nz"], ["shape"]),
               helper.make_node("Gather", ["shape", "one"], ["n"]),
               helper.make_node("Size", ["nz"], ["size"]),
               helper.make_node("Cast", ["n"], ["n_float"], to=F),
               helper.make_node("Mul", ["x", "n_float"], ["scaled"])],
              [vi("x", F, [3, 4])],
              [vi("shape", I64, None), vi("n", I64, None), vi("size", I64, None),
               vi("scaled", F, None)], initializers=[const("one", np.array(1, np.int64))])

    def data(s):
        x = rng.standard_normal((3, 4)).astype(np.float32)
        x[rng.random((3, 4)) < (0.5, 1.0, 0.0)[s]] = 0
        n = np.count_nonzero(x)
        return [x], [np.array([2, n], np.int64), np.array(n, np.int64),
                     np.array(2 * n, np.int64), x * np.float32(n)]
    return m, data


def case_slice_columns(rng):
    """y = x[:, :n], n a run-time [1] input."""
    m = model(helper.make_node("Slice", ["x", "zero", "n", "one"], ["y"]),
              [vi("x", F, [4, 6]), vi("n", I64, [1])], [vi("y", F, None)],
              initializers=[const("zero", np.array([0], np.int64)),
                            const("one", np.array([1], np.int64))])

    def data(s):
        x = rng.standard_normal((4, 6)).astype(np.float32)
        n = (3, 9, -2)[s]
        return [x, np.array([n], np.int64)], [x[:, :n]]
    return m, data


def case_slice_rows_softmax(rng):
    """y = softmax(x[n:], axis 0): the reduction runs along the kept rows only."""
    m = model([helper.make_node("Slice", ["x", "n", "end"], ["rows"]),
               helper.make_node("Softmax", ["rows"], ["y"], axis=0)],
              [vi("x", F, [5, 3]), vi("n", I64, [1])], [vi("y", F, None)],
              initializers=[const("end", np.array([100], np.int64))])

    def data(s):
        x = rng.standard_normal((5, 3)).astype(np.float32)
        rows = x[(1, 5, -2)[s]:]
        return [x, np.array([(1, 5, -2)[s]], np.int64)], [softmax(rows, 0) if len(rows) else rows]
    return m, data


CASES = {"nonzero": case_nonzero,
         "nonzero_large": lambda r: case_nonzero(r, (37, 29, 11)),  # blocks of 107, one partial
         "compress_axis": case_compress,
         "compress_flat": case_compress_flat,
         "unique_sorted_flat": lambda r: case_unique(r),
         "unique_in_order_flat": lambda r: case_unique(r, is_sorted=0),
         "unique_sorted_axis1": lambda r: case_unique(r, axis=1, shape=(3, 5, 2)),
         "unique_in_order_axis0": lambda r: case_unique(r, axis=0, is_sorted=0, shape=(6, 3)),
         "nms_corners": case_nms, "nms_centers": lambda r: case_nms(r, center=1),
         "nonzero_transposed": case_nonzero_transposed, "masked_select": case_masked_select,
         "nms_boxes": case_nms_boxes, "compressed_rows": case_compressed_rows,
         "split_sizes_axis1": case_split_sizes,
         "nonzero_computed_output": case_nonzero_computed_output,
         "nonzero_shape_size": case_nonzero_shape_size,
         "slice_columns": case_slice_columns, "slice_rows_softmax": case_slice_rows_softmax,
         "split_sizes_axis0": lambda r: case_split_sizes(r, (6, 2), 0, ((1, 2, 3), (0, 6, 0),
                                                                         (2, 2, 2)))}


def check_split_sizes_wrong(kiln, root, sanitize, target):
    """Sizes adding up to more than the axis: predict returns KILN_E_SHAPE."""
    m = split_model((3, 7), 1)
    x = np.zeros((3, 7), np.float32)
    d, path = write_model(root, "split_sizes_wrong", m)
    folder = os.path.join(d, "set0")
    write_set(folder, m, [x, np.array([4, 4, 0], np.int64)],
              [x[:, :4], x[:, 4:], x[:, :0]])
    cmd = [os.path.abspath(kiln), "check", path, "--data", folder]
    cmd += (["--sanitize", sanitize] if sanitize else []) + (["--target", target] if target else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    ok = r.returncode == 1 and "error code -4" in r.stdout + r.stderr
    print(f"{'PASS' if ok else 'FAIL'} split_sizes_wrong (KILN_E_SHAPE)")
    if not ok:
        print("     " + (r.stdout + r.stderr).strip().replace("\n", "\n     "))
    return ok


def write_sets(root, name, m, data):
    d, path = write_model(root, name, m)
    dirs = []
    for s in range(SETS):
        folder = os.path.join(d, f"set{s}")
        write_set(folder, m, *data(s))
        dirs += ["--data", folder]
    return path, dirs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--sanitize")
    ap.add_argument("--target")
    a = ap.parse_args()
    rng = np.random.default_rng(10)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="kiln-data-dependent-") as root:
        for name, make in CASES.items():
            m, data = make(rng)
            path, dirs = write_sets(root, name, m, data)
            args = dirs + (["--target", a.target] if a.target else [])
            tally.add(run_check(a.kiln, path, args, name, a.sanitize))
        tally.add(check_split_sizes_wrong(a.kiln, root, a.sanitize, a.target))
    tally.finish()


if __name__ == "__main__":
    main()
