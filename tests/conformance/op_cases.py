#!/usr/bin/env python3
"""Operator cases the ONNX backend tests leave out, run through `kiln check`.

Usage: op_cases.py KILN [--filter REGEX] [--kiln-arg ARG]...

The backend tests of some operators cover one corner only (TfIdfVectorizer: mode TF alone;
TreeEnsemble: SUM over one tree). Each
case here writes a model, inputs and expected outputs (computed by a small, independent Python
model of the operator's semantics, written from the ONNX specification) into a temporary
folder in the backend tests' layout, then runs `kiln check` on it. Other cases take a backend
test and freeze inputs into initializers: CenterCropPad's shape (the form real models have), or
every input, so that constant folding computes the operator in the kernel interpreter. Prints one line per case and
"N passed, M failed"; exits 1 on any failure.
"""
import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def tfidf_expected(x, mode, lo, hi, skips, counts, indexes, pool, weights=None):
    """Counts as ONNX's TfIdfVectorizer defines them: unigrams once, longer n-grams once per
    skip; when the pool holds an n-gram twice, its later entry counts."""
    grams = {}
    gid = 0
    for k in range(1, len(counts) + 1):
        begin = counts[k - 1]
        end = counts[k] if k < len(counts) else len(pool)
        for j in range((end - begin) // k):
            if lo <= k <= hi:
                grams[tuple(pool[begin + j * k:begin + (j + 1) * k])] = gid
            gid += 1
    cols = max(indexes) + 1
    rows = x.reshape(-1, x.shape[-1])
    freq = np.zeros((rows.shape[0], cols), np.int64)
    for r, row in enumerate(rows):
        for n in range(lo, hi + 1):
            for s in range(1 if n == 1 else skips + 1):
                for p in range(len(row)):
                    at = [p + i * (s + 1) for i in range(n)]
                    if at[-1] < len(row) and tuple(row[at]) in grams:
                        freq[r, indexes[grams[tuple(row[at])]]] += 1
    w = np.asarray(weights if weights else [1.0] * cols, np.float32)
    if mode == "TF":
        y = freq.astype(np.float32)
    elif mode == "IDF":
        y = np.where(freq > 0, w, 0).astype(np.float32)
    else:
        y = (freq * w).astype(np.float32)
    return y.reshape(x.shape[:-1] + (cols,)) if x.ndim == 2 else y.reshape(cols)


def tfidf_case(x, **attrs):
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    y = tfidf_expected(x, attrs["mode"], attrs["min_gram_length"], attrs["max_gram_length"],
                       attrs["max_skip_count"], attrs["ngram_counts"], attrs["ngram_indexes"],
                       attrs["pool_int64s"], attrs.get("weights"))
    return [node], {"x": x}, {"y": y}, 9, []


TOKENS = np.array([[2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 2, 3], [3, 3, 3, 2, 3, 9, 5, 4, 5, 4, 2, 3]])
POOL = dict(ngram_counts=[0, 3, 7], pool_int64s=[2, 3, 5, 2, 3, 5, 4, 6, 7, 6, 7, 2, 3, 5],
            ngram_indexes=[4, 0, 2, 1, 3, 5, 3, 6])

CASES = {
    "tfidf_idf_weights_1d_int32": lambda: tfidf_case(
        TOKENS[0].astype(np.int32), mode="IDF", min_gram_length=1, max_gram_length=3,
        max_skip_count=1, weights=[0.5, 1.5, 2.0, 0.25, 3.0, 1.0, 4.0], **POOL),
    "tfidf_tfidf_weights_batch": lambda: tfidf_case(
        TOKENS, mode="TFIDF", min_gram_length=2, max_gram_length=3, max_skip_count=3,
        weights=[0.5, 1.5, 2.0, 0.25, 3.0, 1.0, 4.0], **POOL),
    "tfidf_idf_no_weights_shared_column": lambda: tfidf_case(
        TOKENS, mode="IDF", min_gram_length=1, max_gram_length=2, max_skip_count=2, **POOL),
    "tfidf_tf_repeated_ngram_later_counts": lambda: tfidf_case(
        TOKENS, mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0,
        ngram_counts=[0, 0], pool_int64s=[2, 3, 4, 5, 2, 3], ngram_indexes=[0, 1, 2]),
}


def tree_expected(x, t):
    """ai.onnx.ml TreeEnsemble as its specification describes it, one row at a time."""
    sets, it = {}, iter(t.get("membership_values", []))

    def walk(i, leaf, row):
        while not leaf:
            v, s, m = row[t["nodes_featureids"][i]], t["nodes_splits"][i], t["nodes_modes"][i]
            if m == 6 and i not in sets:
                sets[i] = set()
                for member in it:
                    if np.isnan(member):
                        break
                    sets[i].add(member)
            go = [v <= s, v < s, v >= s, v > s, v == s, v != s,
                  m == 6 and v in sets.get(i, ())][m]
            go = go or (bool(t.get("missing", [0] * (i + 1))[i]) and np.isnan(v))
            i, leaf = ((t["nodes_truenodeids"][i], t["nodes_trueleafs"][i]) if go else
                       (t["nodes_falsenodeids"][i], t["nodes_falseleafs"][i]))
        return t["leaf_weights"][i], t["leaf_targetids"][i]

    agg, nt = t["aggregate_function"], t["n_targets"]
    big = np.finfo(x.dtype).max
    y = np.full((len(x), nt), {0: 0, 1: 0, 2: big, 3: -big}[agg], dtype=np.float64)
    for r, row in enumerate(x.astype(np.float64)):
        for root in t["tree_roots"]:
            tl, fl = t["nodes_trueleafs"][root], t["nodes_falseleafs"][root]
            if tl and fl and t["nodes_truenodeids"][root] == t["nodes_falsenodeids"][root]:
                w, tid = t["leaf_weights"][t["nodes_truenodeids"][root]], \
                    t["leaf_targetids"][t["nodes_truenodeids"][root]]
            else:
                w, tid = walk(root, False, row)
            if agg == 0:
                y[r, tid] += w / len(t["tree_roots"])
            elif agg == 1:
                y[r, tid] += w
            elif agg == 2:
                y[r, tid] = min(y[r, tid], w)
            else:
                y[r, tid] = max(y[r, tid], w)
    return y.astype(x.dtype)


def tree_case(x, **t):
    ft = TensorProto.DOUBLE if x.dtype == np.float64 else TensorProto.FLOAT
    attrs = {k: v for k, v in t.items() if k not in ("nodes_splits", "nodes_modes",
                                                       "leaf_weights", "membership_values",
                                                       "missing")}
    attrs["nodes_splits"] = helper.make_tensor("nodes_splits", ft, (len(t["nodes_splits"]),),
                                               t["nodes_splits"])
    attrs["leaf_weights"] = helper.make_tensor("leaf_weights", ft, (len(t["leaf_weights"]),),
                                               t["leaf_weights"])
    attrs["nodes_modes"] = helper.make_tensor("nodes_modes", TensorProto.UINT8,
                                              (len(t["nodes_modes"]),), t["nodes_modes"])
    if "membership_values" in t:
        attrs["membership_values"] = helper.make_tensor(
            "membership_values", ft, (len(t["membership_values"]),), t["membership_values"])
    if "missing" in t:
        attrs["nodes_missing_value_tracks_true"] = t["missing"]
    node = helper.make_node("TreeEnsemble", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    return [node], {"x": x}, {"y": tree_expected(x, t)}, 21, [("ai.onnx.ml", 5)]


ROWS = np.array([[0.5, 2.0, -1.0], [1.5, np.nan, 3.0], [3.0, 1.0, 3.0], [-2.0, 5.0, np.nan],
                 [1.0, 2.0, 7.0], [np.nan, 0.0, 2.0]])
# two trees over three features; tree 1 shares node 4 from two branches; tree 2 is one leaf
FOREST = dict(
    n_targets=3, tree_roots=[0, 3, 6],
    nodes_featureids=[0, 1, 2, 2, 0, 1, 0],
    nodes_modes=[1, 3, 4, 2, 5, 0, 0],
    nodes_splits=[1.0, 1.5, 3.0, 2.5, 1.0, 9.0, 0.0],
    nodes_truenodeids=[1, 0, 2, 4, 3, 4, 5],
    nodes_trueleafs=[0, 1, 1, 0, 1, 1, 1],
    nodes_falsenodeids=[2, 1, 3, 5, 4, 4, 5],
    nodes_falseleafs=[0, 1, 1, 0, 1, 0, 1],
    leaf_targetids=[0, 1, 2, 0, 1, 2, 1],
    leaf_weights=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    missing=[1, 0, 0, 1, 0, 0, 0])

CASES.update({
    "tree_average_modes_nan_shared_subtree_leaf_tree": lambda: tree_case(
        ROWS.astype(np.float32), aggregate_function=0, **FOREST),
    "tree_min_double": lambda: tree_case(ROWS, aggregate_function=2, **FOREST),
    "tree_max_float": lambda: tree_case(ROWS.astype(np.float32), aggregate_function=3,
                                        **FOREST),
    "tree_sum_membership": lambda: tree_case(
        ROWS.astype(np.float32), aggregate_function=1, n_targets=2, tree_roots=[0],
        nodes_featureids=[0, 2, 1], nodes_modes=[6, 6, 0], nodes_splits=[0, 0, 1.5],
        nodes_truenodeids=[1, 0, 1], nodes_trueleafs=[0, 1, 1],
        nodes_falsenodeids=[2, 1, 2], nodes_falseleafs=[0, 1, 1],
        leaf_targetids=[0, 1, 0], leaf_weights=[1.0, 10.0, 100.0],
        membership_values=[0.5, 3.0, float("nan"), 3.0, 7.0, float("nan")]),
})


def topk_expected(x, k, axis, largest):
    """TopK by sorting each line with a key: NaN above every number (numpy's sort order), then
    the value, ties by the lower index."""
    xs = np.moveaxis(x, axis, -1)
    vals = np.empty(xs.shape[:-1] + (k,), x.dtype)
    inds = np.empty(xs.shape[:-1] + (k,), np.int64)
    for pos in np.ndindex(xs.shape[:-1]):
        line = xs[pos]

        def key(i):
            v = line[i]
            nan = bool(np.isnan(v)) if np.issubdtype(line.dtype, np.floating) else False
            rank = 0 if nan else (-float(v) if largest else float(v))
            return ((0 if nan else 1) if largest else (1 if nan else 0), rank, i)
        order = sorted(range(len(line)), key=key)[:k]
        inds[pos] = order
        vals[pos] = line[order]
    return np.moveaxis(vals, -1, axis), np.moveaxis(inds, -1, axis)


def topk_case(x, k, axis, largest):
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=axis,
                            largest=largest)
    v, i = topk_expected(x, k, axis if axis >= 0 else axis + x.ndim, largest)
    kk = numpy_helper.from_array(np.array([k], np.int64), "k")
    return [node], {"x": x}, {"values": v, "indices": i}, 11, [], [kk]


def col2im_case(x, image, block, dilations, pads, strides):
    """Col2Im: every element of every block added at the pixel its tap lands on."""
    k = len(image)
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], dilations=dilations,
                            pads=pads, strides=strides)
    counts = [(image[i] + pads[i] + pads[k + i] - dilations[i] * (block[i] - 1) - 1)
              // strides[i] + 1 for i in range(k)]
    n, cb, _ = x.shape
    c = cb // int(np.prod(block))
    y = np.zeros((n, c) + tuple(image), x.dtype)
    for b in range(n):
        for ch in range(c):
            for bi, off in enumerate(np.ndindex(*block)):
                for li, at in enumerate(np.ndindex(*counts)):
                    pix = tuple(at[i] * strides[i] + off[i] * dilations[i] - pads[i]
                                for i in range(k))
                    if all(0 <= pix[i] < image[i] for i in range(k)):
                        y[(b, ch) + pix] += x[b, ch * int(np.prod(block)) + bi, li]
    init = [numpy_helper.from_array(np.array(image, np.int64), "image"),
            numpy_helper.from_array(np.array(block, np.int64), "block")]
    return [node], {"x": x}, {"y": y}, 18, [], init


def stft_case(signal, step, window, onesided):
    """STFT: numpy's FFT of each windowed frame."""
    length = len(window)
    sig = signal[..., 0] + (1j * signal[..., 1] if signal.shape[-1] == 2 else 0)
    frames = (sig.shape[1] - length) // step + 1
    spec = np.stack([np.fft.fft(sig[:, f * step:f * step + length] * window, axis=-1)
                     for f in range(frames)], axis=1)
    if onesided:
        spec = spec[..., :length // 2 + 1]
    y = np.stack([spec.real, spec.imag], axis=-1).astype(signal.dtype)
    node = helper.make_node("STFT", ["signal", "step", "window"], ["y"], onesided=onesided)
    st = numpy_helper.from_array(np.array(step, np.int64), "step")
    return [node], {"signal": signal, "window": window}, {"y": y}, 17, [], [st]


def window_case(op, size, periodic, dtype, onnx_type):
    """The window functions from their definitions (cos sums), in float64."""
    a = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
         "BlackmanWindow": (0.42, 0.5, 0.08)}[op]
    span = size if periodic else size - 1
    t = 2 * np.pi * np.arange(size) / span
    y = (a[0] - a[1] * np.cos(t) + a[2] * np.cos(2 * t)).astype(dtype)
    node = helper.make_node(op, ["size"], ["y"], periodic=periodic, output_datatype=onnx_type)
    sz = numpy_helper.from_array(np.array(size, np.int32), "size")
    return [node], {}, {"y": y}, 17, [], [sz]


def affine_grid_case(theta, size, align_corners):
    """AffineGrid: theta times the homogeneous base grid, coordinates in [-1, 1]."""
    spatial = size[2:]

    def axis(s):
        if align_corners:
            return np.linspace(-1, 1, s) if s > 1 else np.array([-1.0])
        return (np.arange(s) * 2 + 1) / s - 1
    coords = np.meshgrid(*[axis(s) for s in spatial], indexing="ij")
    base = np.stack(coords[::-1] + [np.ones(spatial)], axis=-1)  # (x, y[, z], 1)
    grid = np.einsum("...i,nji->n...j", base, theta.astype(np.float64)).astype(theta.dtype)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"],
                            align_corners=align_corners)
    sz = numpy_helper.from_array(np.array(size, np.int64), "size")
    return [node], {"theta": theta}, {"grid": grid}, 20, [], [sz]


def mel_expected(mels, dft, rate, low, high, dtype):
    """MelWeightMatrix: triangular filters between mel-spaced points, written from the ONNX
    specification's definition (edges' mel values in float32 like its float32 inputs, each
    point's spectrogram bin floor((dft + 1) hz / rate) in float64)."""
    def mel(hz):
        return np.float32(2595) * np.log10(np.float32(1) + np.float32(hz) / np.float32(700))
    lo, hi = mel(low), mel(high)
    step = (hi - lo) / np.float32(mels + 2)
    points = np.arange(mels + 2) * np.float64(step) + np.float64(lo)
    bins = np.floor((dft + 1) * (700 * (10 ** (points / 2595) - 1)) / rate).astype(int)
    y = np.zeros((dft // 2 + 1, mels))
    for i in range(mels):
        l, c, h = bins[i], bins[i + 1], bins[i + 2]
        for j in range(y.shape[0]):
            if c <= j < h:
                y[j, i] = (h - j) / (h - c)
            elif l <= j <= c:
                y[j, i] = 1.0 if c == l else (j - l) / (c - l)
    return y.astype(dtype)


def mel_case(mels, dft, rate, low, high, dtype, onnx_type, at_run_time):
    names = ["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"]
    values = [np.array(mels, np.int64), np.array(dft, np.int64), np.array(rate, np.int32),
              np.array(low, np.float32), np.array(high, np.float32)]
    node = helper.make_node("MelWeightMatrix", names, ["y"], output_datatype=onnx_type)
    y = mel_expected(mels, dft, rate, low, high, dtype)
    if at_run_time:
        return [node], dict(zip(names, values)), {"y": y}, 17
    inits = [numpy_helper.from_array(v, n) for n, v in zip(names, values)]
    return [node], {}, {"y": y}, 17, [], inits



def dropout_case(x, ratio, training, seed, run_time, mask):
    """Dropout in training mode as the reference computes it: numpy's legacy generator seeded
    with `seed` draws u per element, kept where u >= ratio, scaled by 1 / (1 - ratio) in the
    ratio's type; not training: y = x and the mask all true. `run_time` names the inputs fed
    at run time (the others are initializers); ratio None leaves the input out (0.5)."""
    r = np.float32(0.5 if ratio is None else ratio)
    keep = np.random.RandomState(seed).uniform(0, 1.0, x.shape) >= r
    if not training:
        keep = np.ones(x.shape, bool)
    y = (keep * x * (np.float32(1) / (np.float32(1) - r))).astype(x.dtype) if training else x
    values = {"x": x, "r": None if ratio is None else np.array(ratio, np.float32),
              "t": np.array(training)}
    names = ["x", "" if ratio is None else "r", "t"]
    node = helper.make_node("Dropout", names, ["y", "z"] if mask else ["y"], seed=seed)
    inputs = {k: v for k, v in values.items() if v is not None and k in run_time}
    inits = [numpy_helper.from_array(v, k) for k, v in values.items()
             if v is not None and k not in run_time]
    outputs = {"y": y, "z": keep} if mask else {"y": y}
    return [node], inputs, outputs, 22, [], inits



# the numpy types of the ONNX types the random operators' cases name
NP_TYPE = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
           TensorProto.FLOAT16: np.float16, TensorProto.INT32: np.int32,
           TensorProto.INT64: np.int64, TensorProto.BOOL: np.bool_}


def random_generator_case(op, seed, shape=None, x=None, run_time=True, dtype=None, opset=22,
                          then_add=False, **attrs):
    """RandomUniform / RandomNormal (shape attribute) and their Like forms (x's shape) as kiln
    draws them: numpy's RandomState(seed).uniform(low, high) or .normal(mean, scale) in
    float64, rounded once to the output type (dtype, else float or x's type). The attributes
    are float32, so numpy gets their float32 values. x is a graph input when `run_time`, else
    an initializer (the node then folds); `then_add` adds x to the draws, so that the draws are
    an intermediate the next node reads, not the graph output."""
    normal = "Normal" in op
    a, b = (attrs.get("mean", 0.0), attrs.get("scale", 1.0)) if normal else \
        (attrs.get("low", 0.0), attrs.get("high", 1.0))
    a, b = np.float64(np.float32(a)), np.float64(np.float32(b))
    out_shape = x.shape if x is not None else tuple(shape)
    state = np.random.RandomState(seed)
    draws = state.normal(a, b, out_shape) if normal else state.uniform(a, b, out_shape)
    if dtype is not None:
        attrs["dtype"] = dtype
    out_type = NP_TYPE[dtype] if dtype is not None else \
        (x.dtype if x is not None else np.float32)
    y = draws.astype(out_type)
    if seed is not None:
        attrs["seed"] = float(seed)
    if x is None:
        node = helper.make_node(op, [], ["y"], shape=list(shape), **attrs)
        return [node], {}, {"y": y}, opset
    nodes = [helper.make_node(op, ["x"], ["r" if then_add else "y"], **attrs)]
    if then_add:
        nodes.append(helper.make_node("Add", ["r", "x"], ["y"]))
        y = y + x
    inputs = {"x": x} if run_time else {}
    inits = [] if run_time else [numpy_helper.from_array(x, "x")]
    return nodes, inputs, {"y": y}, opset, [], inits


def bfloat16_values(a):
    """float32 values rounded to bfloat16 (nearest, ties to even), as float32."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def random_bfloat16_case(op, seed, shape, **attrs):
    """RandomUniform / RandomNormal in bfloat16 (ONNX opset 22), read back through a Cast to
    float: the float64 draws rounded to float32, then to bfloat16."""
    normal = op == "RandomNormal"
    state = np.random.RandomState(seed)
    a, b = (np.float64(np.float32(attrs.get(k, v))) for k, v in
            ((("mean", 0.0), ("scale", 1.0)) if normal else (("low", 0.0), ("high", 1.0))))
    draws = state.normal(a, b, shape) if normal else state.uniform(a, b, shape)
    nodes = [helper.make_node(op, [], ["r"], shape=list(shape), seed=float(seed),
                              dtype=TensorProto.BFLOAT16, **attrs),
             helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT)]
    return nodes, {}, {"y": bfloat16_values(draws.astype(np.float32))}, 22


def bernoulli_case(x, seed, dtype=None, opset=22):
    """Bernoulli as kiln draws it: y = (u < p) in the output type (dtype, else x's type), u
    the uniform draws of numpy's RandomState(seed), one per element in C order."""
    attrs = {"seed": float(seed)}
    if dtype is not None:
        attrs["dtype"] = dtype
    out_type = NP_TYPE[dtype] if dtype is not None else x.dtype
    u = np.random.RandomState(seed).random_sample(x.shape)
    y = (u < x.astype(np.float64)).astype(out_type)
    return [helper.make_node("Bernoulli", ["x"], ["y"], **attrs)], {"x": x}, {"y": y}, opset


def multinomial_expected(x, samples, seed, out_type):
    """Each row's classes drawn by inverse CDF over the softmax of its logits: the first class
    whose cumulative weight exceeds u times the total (numpy's searchsorted, side right), with
    u = RandomState(seed).random_sample((batch, samples)) and the weights exp(x - max) in
    float64."""
    u = np.random.RandomState(seed).random_sample((x.shape[0], samples))
    w = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True).astype(np.float64))
    cdf = np.cumsum(w, axis=1)
    y = np.empty(u.shape, out_type)
    for b in range(x.shape[0]):
        y[b] = np.minimum(np.searchsorted(cdf[b], u[b] * cdf[b, -1], side="right"),
                          x.shape[1] - 1)
    return y


def multinomial_case(x, samples, seed, dtype=None, opset=22):
    attrs = {"sample_size": samples, "seed": float(seed)}
    if dtype is not None:
        attrs["dtype"] = dtype
    out_type = np.int64 if dtype == TensorProto.INT64 else np.int32
    y = multinomial_expected(x, samples, seed, out_type)
    return [helper.make_node("Multinomial", ["x"], ["y"], **attrs)], {"x": x}, {"y": y}, opset


# numpy's draws bit for bit: these cases run with --rtol 0 --atol 0
EXACT = {"randomuniform_float64_seed_123_exact", "randomnormal_float64_large_seed_odd_count_exact",
         "randomuniformlike_int32_input_dtype_double_exact",
         "randomnormallike_float64_input_then_add_exact"}
_P = np.array([[0.0, 1.0, 0.5, 0.25], [0.75, 0.1, 0.9, 1e-3], [0.5, 0.5, 0.999, 0.3]])
CASES.update({
    "randomuniform_float32_low_high_opset1": lambda: random_generator_case(
        "RandomUniform", 7, shape=[3, 4], low=-1.5, high=2.1, opset=1),
    "randomuniform_float64_seed_123_exact": lambda: random_generator_case(
        "RandomUniform", 123, shape=[2, 3, 5], dtype=TensorProto.DOUBLE, low=0.1, high=0.7),
    "randomuniform_no_seed_is_seed_0": lambda: _unseeded_uniform(),
    "randomnormal_float32_mean_scale": lambda: random_generator_case(
        "RandomNormal", 3, shape=[4, 6], mean=1.5, scale=0.25),
    "randomnormal_float64_large_seed_odd_count_exact": lambda: random_generator_case(
        "RandomNormal", 4000000000, shape=[7, 9], dtype=TensorProto.DOUBLE, mean=-3.0,
        scale=2.0),
    "randomnormal_bfloat16_through_cast": lambda: random_bfloat16_case(
        "RandomNormal", 21, (3, 7), mean=10.0, scale=4.0),
    "randomnormal_float16_opset1": lambda: random_generator_case(
        "RandomNormal", 9, shape=[5, 5], dtype=TensorProto.FLOAT16, opset=1),
    "randomuniformlike_float32_input_no_dtype": lambda: random_generator_case(
        "RandomUniformLike", 11, x=_rng.standard_normal((2, 5)).astype(np.float32), low=2.0,
        high=3.0),
    "randomuniformlike_int32_input_dtype_double_exact": lambda: random_generator_case(
        "RandomUniformLike", 12, x=np.arange(12, dtype=np.int32).reshape(3, 4),
        dtype=TensorProto.DOUBLE, low=-4.0, high=-1.0),
    "randomuniformlike_constant_input_folded": lambda: random_generator_case(
        "RandomUniformLike", 13, x=np.zeros((3, 3), np.float32), run_time=False,
        dtype=TensorProto.FLOAT),
    "randomnormallike_float64_input_then_add_exact": lambda: random_generator_case(
        "RandomNormalLike", 14, x=_rng.standard_normal((5, 3)), then_add=True, mean=0.5,
        scale=3.0),
    "randomnormallike_float16_input_dtype_float": lambda: random_generator_case(
        "RandomNormalLike", 15, x=np.ones((4, 2), np.float16), dtype=TensorProto.FLOAT,
        opset=15),
    "bernoulli_float32_dtype_int32": lambda: bernoulli_case(
        _P.astype(np.float32), 5, TensorProto.INT32, opset=15),
    "bernoulli_float64_dtype_float32": lambda: bernoulli_case(_P, 4000000000, TensorProto.FLOAT),
    "bernoulli_float64_dtype_bool_many": lambda: bernoulli_case(
        np.random.RandomState(1).random_sample((8, 50)), 6, TensorProto.BOOL),
    "bernoulli_float16_no_dtype": lambda: bernoulli_case(_P.astype(np.float16), 7),
    "multinomial_float32_batch3_samples20_int64": lambda: multinomial_case(
        np.array([[0.0, 1.0, 2.0, -1.0, 0.5], [3.0, -2.0, 0.0, 0.0, 1.0],
                  [-np.inf, 0.0, -np.inf, 1.0, -3.0]], np.float32), 20, 5, TensorProto.INT64),
    "multinomial_float64_batch2_default_int32_opset7": lambda: multinomial_case(
        _rng.standard_normal((2, 4)) * 2, 7, 123, opset=7),
    "multinomial_float32_40_classes_300_samples": lambda: multinomial_case(
        (_rng.standard_normal((4, 40)) * 3).astype(np.float32), 300, 2024, TensorProto.INT64),
    "multinomial_float16_one_class": lambda: multinomial_case(
        np.array([[0.5], [-2.0]], np.float16), 3, 8, TensorProto.INT32),
})


def _unseeded_uniform():
    """Without a seed kiln draws RandomState(0)'s numbers (ONNX would draw a fresh seed)."""
    made = random_generator_case("RandomUniform", 0, shape=[6], dtype=TensorProto.DOUBLE)
    del made[0][0].attribute[[a.name for a in made[0][0].attribute].index("seed")]
    return made


def maxunpool_case(x, ind, out_shape):
    """MaxUnpool with output_shape a graph input (the output declared of that shape): each
    x[i] at flat position ind[i] of the output, as ONNX Runtime and PyTorch place it."""
    y = np.zeros(int(np.prod(out_shape)), x.dtype)
    y[ind.flatten()] = x.flatten()
    node = helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], kernel_shape=[2, 2],
                            strides=[2, 2])
    return [node], {"x": x, "i": ind, "s": np.array(out_shape, np.int64)}, \
        {"y": y.reshape(out_shape)}, 22


_rng = np.random.default_rng(7)
_TOPK_X = np.array([[[3, 1], [np.nan, 2], [3, 2], [-1, np.nan], [0, 2], [3, 5]],
                    [[1, 1], [1, 1], [np.nan, np.nan], [2, -2], [-0.0, 0.0], [7, 1]]])
CASES.update({
    "topk_float16_smallest_nan_axis1": lambda: topk_case(
        _TOPK_X.astype(np.float16), 4, 1, 0),
    "topk_float64_largest_nan_axis_minus2": lambda: topk_case(
        _TOPK_X.astype(np.float64), 3, -2, 1),
    "topk_int32_axis0_ties": lambda: topk_case(
        np.array([[4, 1, 4], [4, 9, 0], [2, 9, 4], [4, 1, 8]], np.int32), 2, 0, 1),
    "col2im_1d_pads_strides_dilations_int32": lambda: col2im_case(
        np.arange(2 * 6 * 4, dtype=np.int32).reshape(2, 6, 4), [9], [3], [2], [1, 2], [2]),
    "col2im_2d_two_channels_all_attrs": lambda: col2im_case(
        _rng.standard_normal((1, 2 * 4, 8)).astype(np.float32), [4, 5], [2, 2], [1, 2],
        [1, 0, 0, 1], [2, 1]),
    "stft_complex_twosided_window_batch2": lambda: stft_case(
        _rng.standard_normal((2, 20, 2)), 3, np.hanning(8), 0),
    "stft_real_onesided_odd_length": lambda: stft_case(
        _rng.standard_normal((1, 17, 1)).astype(np.float32), 4,
        np.ones(7, np.float32), 1),
    "hammingwindow_symmetric_float64": lambda: window_case("HammingWindow", 7, 0, np.float64, 11),
    "blackmanwindow_periodic_float16": lambda: window_case("BlackmanWindow", 9, 1, np.float16, 10),
    "melweightmatrix_run_time_inputs_40_mels": lambda: mel_case(
        40, 512, 16000, 0.0, 8000.0, np.float32, 1, True),
    "melweightmatrix_constants_float64_low_edge": lambda: mel_case(
        13, 256, 8000, 125.5, 3800.0, np.float64, 11, False),
    "melweightmatrix_odd_dft_float16": lambda: mel_case(
        5, 33, 22050, 300.0, 8000.0, np.float16, 10, False),
    "dropout_training_at_run_time_false_float64": lambda: dropout_case(
        _rng.standard_normal((4, 5)), 0.3, False, 5, ("x", "r", "t"), True),
    "dropout_training_constant_default_ratio_seed_12345": lambda: dropout_case(
        _rng.standard_normal((3, 50)).astype(np.float32), None, True, 12345, ("x",), True),
    "dropout_training_run_time_ratio_large_seed": lambda: dropout_case(
        _rng.standard_normal((2, 3, 700)).astype(np.float32), 0.2, True, 4000000000,
        ("x", "r", "t"), False),
    "maxunpool_output_shape_at_run_time_odd_size": lambda: maxunpool_case(
        np.array([[[[5, 6], [7, 8]]], [[[1, 2], [3, 4]]]], np.float32),
        np.array([[[[6, 8], [16, 18]]], [[[25, 28], [40, 43]]]], np.int64), [2, 1, 5, 5]),
    "affine_grid_2d_float64": lambda: affine_grid_case(
        _rng.standard_normal((2, 2, 3)), [2, 4, 3, 1], 0),
    "affine_grid_3d_align_corners_one_deep": lambda: affine_grid_case(
        _rng.standard_normal((1, 3, 4)).astype(np.float32), [1, 1, 1, 3, 2], 1),
})


# ---- ai.onnx.ml linear models and scalers, as ONNX Runtime computes them (float throughout;
# post_transform per row of two or more scores, only PROBIT for one score; SOFTMAX_ZERO leaves
# scores of magnitude <= 1e-7 out of the sum; PROBIT by Winitzki's erfinv approximation)

@np.errstate(invalid="ignore", divide="ignore")  # out of (0, 1): NaN, as in ONNX Runtime
def _probit(v):  # in float32, as ONNX Runtime computes it: the approximation cancels near 0.5
    f = np.float32
    x = f(2) * v.astype(f) - f(1)
    ln = np.log((f(1) - x) * (f(1) + x))
    t = f(2 / (3.14159 * 0.147)) + f(0.5) * ln
    return f(1.41421356) * np.sign(x) * np.sqrt(np.sqrt(t * t - f(1 / 0.147) * ln) - t)


@np.errstate(invalid="ignore", divide="ignore")  # an all-zero row's SOFTMAX_ZERO: 0 / 0
def _transform(s, pt):
    s = s.astype(np.float64)
    if s.shape[1] == 1:
        return _probit(s) if pt == "PROBIT" else s
    if pt == "LOGISTIC":
        return 1 / (1 + np.exp(-s))
    if pt == "PROBIT":
        return _probit(s)
    if pt in ("SOFTMAX", "SOFTMAX_ZERO"):
        e = np.exp(s - s.max(axis=1, keepdims=True))
        if pt == "SOFTMAX_ZERO":
            keep = np.abs(s) > 1e-7
            e = np.where(keep, e, s * np.exp(-s.max(axis=1, keepdims=True)))
            return e / np.where(keep, e, 0).sum(axis=1, keepdims=True)
        return e / e.sum(axis=1, keepdims=True)
    return s


def _scores(x, coef, icpt):
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    c = np.asarray(coef, np.float64).reshape(-1, x2.shape[1])
    s = x2.astype(np.float32).astype(np.float64) @ c.T
    return s + (np.asarray(icpt, np.float64) if icpt is not None else 0)


def linear_regressor_case(x, coef, icpt=None, targets=1, pt="NONE"):
    attrs = dict(coefficients=coef, targets=targets, post_transform=pt)
    if icpt is not None:
        attrs["intercepts"] = icpt
    node = helper.make_node("LinearRegressor", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    y = _transform(_scores(x, coef, icpt), pt).astype(np.float32)
    return [node], {"x": x}, {"y": y}, 17, [("ai.onnx.ml", 1)]


def linear_classifier_case(x, coef, icpt, labels=None, pt="NONE"):
    attrs = dict(coefficients=coef, intercepts=icpt, post_transform=pt)
    if labels is not None:
        attrs["classlabels_ints"] = labels
    node = helper.make_node("LinearClassifier", ["x"], ["y", "z"], domain="ai.onnx.ml", **attrs)
    s = _scores(x, coef, icpt).astype(np.float32).astype(np.float64)
    if s.shape[1] > 1:
        y = np.asarray(labels, np.int64)[np.argmax(s, axis=1)]
        z = _transform(s, pt)
    else:
        two = labels is not None and len(labels) == 2
        yes, no = (labels[1], labels[0]) if two else (1, 0)
        y = np.where(s[:, 0] > 0, yes, no).astype(np.int64)
        z = np.stack([1 - s[:, 0], s[:, 0]], axis=1) if two else _transform(s, pt)
    return [node], {"x": x}, {"y": y, "z": z.astype(np.float32)}, 17, [("ai.onnx.ml", 1)]


def scaler_case(x, offset=None, scale=None):
    attrs = {}
    if offset is not None:
        attrs["offset"] = offset
    if scale is not None:
        attrs["scale"] = scale
    node = helper.make_node("Scaler", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    off = np.float32(0) if offset is None else np.asarray(offset, np.float32)
    sc = np.float32(1) if scale is None else np.asarray(scale, np.float32)
    y = ((x.astype(np.float32) - off) * sc).astype(np.float32)
    return [node], {"x": x}, {"y": y}, 17, [("ai.onnx.ml", 1)]


def normalizer_case(x, norm):
    node = helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm=norm)
    v = x.astype(np.float32).astype(np.float64)
    axis = v.ndim - 1
    if norm == "MAX":
        d = v.max(axis=axis, keepdims=True)
    elif norm == "L1":
        d = np.abs(v).sum(axis=axis, keepdims=True)
    else:
        d = np.sqrt((v * v).sum(axis=axis, keepdims=True))
    return [node], {"x": x}, {"y": (v / d).astype(np.float32)}, 17, [("ai.onnx.ml", 1)]


def imputer_case(x, imputed, replaced):
    is_float = x.dtype.kind == "f"
    attrs = ({"imputed_value_floats": imputed, "replaced_value_float": replaced} if is_float
             else {"imputed_value_int64s": imputed, "replaced_value_int64": replaced})
    node = helper.make_node("Imputer", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    hit = np.isnan(x) if is_float and np.isnan(replaced) else x == replaced
    fill = np.asarray(imputed, x.dtype) if len(imputed) == x.shape[-1] else x.dtype.type(imputed[0])
    y = np.where(hit, np.broadcast_to(fill, x.shape), x).astype(x.dtype)
    return [node], {"x": x}, {"y": y}, 17, [("ai.onnx.ml", 1)]


def feature_vectorizer_case(inputs, dims):
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node("FeatureVectorizer", names, ["y"], domain="ai.onnx.ml",
                            inputdimensions=dims)
    rows = 1 if inputs[0].ndim == 1 else inputs[0].shape[0]
    parts = []
    for x, w in zip(inputs, dims):
        flat = x.reshape(rows, -1).astype(np.float32)[:, :w]
        parts.append(np.pad(flat, ((0, 0), (0, w - flat.shape[1]))))
    return ([node], dict(zip(names, inputs)), {"y": np.concatenate(parts, axis=1)}, 17,
            [("ai.onnx.ml", 1)])


def one_hot_encoder_case(x, cats, zeros=1):
    node = helper.make_node("OneHotEncoder", ["x"], ["y"], domain="ai.onnx.ml",
                            cats_int64s=cats, zeros=zeros)
    key = np.trunc(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64)
    y = (key[..., None] == np.asarray(cats, np.int64)).astype(np.float32)
    return [node], {"x": x}, {"y": y}, 17, [("ai.onnx.ml", 1)]


def _svm_kernel(x, sv, kind, params):
    gamma, coef0, degree = params if params else (0.0, 0.0, 0.0)
    x = x.astype(np.float32).astype(np.float64)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if kind == "RBF":
        return np.exp(-gamma * ((x[:, None, :] - sv[None, :, :]) ** 2).sum(axis=2))
    dot = x @ sv.T
    if kind == "POLY":
        return (gamma * dot + coef0) ** degree
    if kind == "SIGMOID":
        return np.tanh(gamma * dot + coef0)
    return dot


def svm_regressor_case(x, coef, rho, sv=None, kind="LINEAR", params=None, one_class=0):
    # ONNX Runtime requires kernel_params even where the kernel ignores them
    attrs = dict(coefficients=coef, rho=rho, kernel_type=kind, one_class=one_class,
                 kernel_params=params or [0.0, 0.0, 0.0])
    if sv is not None:
        attrs.update(support_vectors=np.asarray(sv).ravel().tolist(), n_supports=len(sv))
        y = _svm_kernel(x, np.asarray(sv, np.float64), kind, params) @ np.asarray(coef) + rho[0]
    else:
        y = _scores(x, coef, None)[:, 0] + rho[0]
    if one_class:
        y = np.where(y > 0, 1.0, -1.0)
    node = helper.make_node("SVMRegressor", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    return [node], {"x": x}, {"y": y.reshape(-1, 1).astype(np.float32)}, 17, [("ai.onnx.ml", 1)]


def svm_classifier_case(x, labels, coef, rho, sv=None, per_class=None, kind="LINEAR",
                        params=None, pt="NONE"):
    attrs = dict(classlabels_ints=labels, coefficients=coef, rho=rho, kernel_type=kind,
                 post_transform=pt, kernel_params=params or [0.0, 0.0, 0.0])
    c = len(labels)
    if sv is None:  # liblinear: a score per class, rho[0] added to each
        s = _scores(x, coef, [rho[0]] * c).astype(np.float32).astype(np.float64)
        if c == 2:
            allpos = all(v >= 0 for v in coef)
            hi = s.max(axis=1)
            second = (hi >= 0.5) if allpos else (hi > 0)
            cls = np.where(second | (s[:, 1] > s[:, 0]), 1, 0)
        else:
            cls = np.argmax(s, axis=1)
        z = _transform(s, pt)
    else:
        attrs.update(support_vectors=np.asarray(sv).ravel().tolist(), vectors_per_class=per_class)
        k = _svm_kernel(x, np.asarray(sv, np.float64), kind, params)
        v = k.shape[1]
        start = np.concatenate([[0], np.cumsum(per_class)[:-1]])
        co = np.asarray(coef, np.float64).reshape(c - 1, v)
        scores, votes, idx = [], np.zeros((k.shape[0], c)), 0
        for i in range(c - 1):
            for j in range(i + 1, c):
                si, sj = slice(start[i], start[i] + per_class[i]), slice(start[j], start[j] + per_class[j])
                sc = k[:, si] @ co[j - 1, si] + k[:, sj] @ co[i, sj] + rho[idx]
                idx += 1
                scores.append(sc)
                votes[np.arange(len(sc)), np.where(sc > 0, i, j)] += 1
        s = np.stack(scores, axis=1).astype(np.float32).astype(np.float64)
        cls = np.argmax(votes, axis=1)
        if c == 2:  # NONE: [-s, s]; LOGISTIC: [1 - sigmoid(s), sigmoid(s)]; else [1 - s, s]
            t = 1 / (1 + np.exp(-s[:, 0])) if pt == "LOGISTIC" else s[:, 0]
            z = np.stack([-t if pt == "NONE" else 1 - t, t], axis=1)
        else:
            z = _transform(s, pt)
    node = helper.make_node("SVMClassifier", ["x"], ["y", "z"], domain="ai.onnx.ml", **attrs)
    y = np.asarray(labels, np.int64)[cls]
    return [node], {"x": x}, {"y": y, "z": z.astype(np.float32)}, 17, [("ai.onnx.ml", 1)]


_X4 = _rng.standard_normal((5, 4)).astype(np.float32)
_SV = [[0.5, -1.0, 0.2, 1.0], [1.0, 0.5, -0.5, 0.0], [-1.0, 0.0, 1.0, 0.5],
       [0.0, 1.0, 0.5, -1.0], [0.3, 0.3, 0.3, 0.3], [-0.5, -0.5, 0.5, 0.5]]
_COEF3 = [0.5, -1.0, 0.25, 2.0, -0.5, 1.5, 0.0, -2.0, 1.0, 1.0, -1.0, 0.5]
CASES.update({
    "ml_linear_regressor_one_target": lambda: linear_regressor_case(
        _X4, [0.5, -1.0, 0.25, 2.0], [0.75]),
    "ml_linear_regressor_targets_softmax": lambda: linear_regressor_case(
        _X4, _COEF3, [0.1, -0.2, 0.3], targets=3, pt="SOFTMAX"),
    "ml_linear_regressor_int64_no_intercepts": lambda: linear_regressor_case(
        np.array([[1, -2, 3], [4, 0, -6]], np.int64), [1.0, 0.5, -0.25, 2.0, 0.0, 1.0],
        targets=2),
    "ml_linear_classifier_three_classes": lambda: linear_classifier_case(
        _X4, _COEF3, [0.1, -0.2, 0.3], [7, 8, 9]),
    # skl2onnx imports ai.onnx.ml opset 3 (or 1): version 1 of the operator serves both
    "ml_linear_classifier_ml_opset3": lambda: linear_classifier_case(
        _X4, _COEF3, [0.1, -0.2, 0.3], [7, 8, 9])[:4] + ([("ai.onnx.ml", 3)],),
    "ml_linear_classifier_logistic": lambda: linear_classifier_case(
        _X4, _COEF3, [0.1, -0.2, 0.3], [0, 1, 2], "LOGISTIC"),
    "ml_linear_classifier_softmax_zero": lambda: linear_classifier_case(
        np.array([[1, 0, 0, 0], [0, 0, 0, 0], [2, -1, 0.5, 1]], np.float32),
        [1.0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [3, 4, 5],
        "SOFTMAX_ZERO"),
    "ml_linear_classifier_probit_double": lambda: linear_classifier_case(
        (_X4 * 0.1).astype(np.float64), [0.1, 0.2, -0.1, 0.3, 0.2, -0.2, 0.1, 0.1],
        [0.5, 0.4], [1, 2], "PROBIT"),
    "ml_linear_classifier_binary_two_labels": lambda: linear_classifier_case(
        _X4, [0.5, -1.0, 0.25, 2.0], [0.1], [10, 20]),
    "ml_linear_classifier_binary_no_labels_1d": lambda: linear_classifier_case(
        np.array([0.5, -1.0, 2.0, 0.25], np.float32), [0.5, -1.0, 0.25, 2.0], [-0.1]),
    "ml_scaler_per_feature_int32": lambda: scaler_case(
        np.array([[1, 2, 3], [-4, 5, 6]], np.int32), [0.5, 1.0, -1.0], [2.0, 0.5, 1.5]),
    "ml_scaler_one_value_3d": lambda: scaler_case(
        _rng.standard_normal((2, 3, 4)).astype(np.float64), [0.25], [4.0]),
    "ml_normalizer_max": lambda: normalizer_case(np.abs(_X4) + 0.5, "MAX"),
    "ml_normalizer_max_negative_double": lambda: normalizer_case(
        np.array([[-4.0, 2.0, 1.0], [-1.0, -3.0, 6.0]]), "MAX"),
    "ml_normalizer_l1": lambda: normalizer_case(_X4, "L1"),
    "ml_svm_regressor_rbf": lambda: svm_regressor_case(
        _X4, [0.5, -1.0, 0.25], [0.1], _SV[:3], "RBF", [0.5, 0.0, 0.0]),
    "ml_svm_regressor_poly_one_class": lambda: svm_regressor_case(
        _X4, [0.5, -1.0, 0.25, 1.0], [-0.2], _SV[:4], "POLY", [0.3, 1.0, 2.0], one_class=1),
    "ml_svm_regressor_linear_mode_double": lambda: svm_regressor_case(
        _X4.astype(np.float64), [0.5, -1.0, 0.25, 2.0], [0.3]),
    "ml_svm_classifier_three_classes_rbf": lambda: svm_classifier_case(
        _X4, [4, 5, 6], [0.5, -0.3, 0.8, -0.2, 0.4, 0.1, 0.7, -0.6, 0.2, 0.3, -0.4, 0.9],
        [0.1, -0.2, 0.05], _SV, [2, 2, 2], "RBF", [0.4, 0.0, 0.0]),
    "ml_svm_classifier_three_classes_sigmoid_softmax": lambda: svm_classifier_case(
        _X4, [0, 1, 2], [0.5, -0.3, 0.8, -0.2, 0.4, 0.1, 0.7, -0.6, 0.2, 0.3, -0.4, 0.9],
        [0.1, -0.2, 0.05], _SV, [1, 3, 2], "SIGMOID", [0.2, 0.1, 0.0], "SOFTMAX"),
    "ml_svm_classifier_binary_linear_kernel": lambda: svm_classifier_case(
        _X4, [3, 7], [0.5, -0.3, 0.8, -0.2, 0.4], [0.1], _SV[:5], [2, 3]),
    "ml_svm_classifier_binary_poly_logistic": lambda: svm_classifier_case(
        _X4, [3, 7], [0.5, -0.3, 0.8, -0.2, 0.4], [0.1], _SV[:5], [3, 2], "POLY",
        [0.5, 0.5, 3.0], "LOGISTIC"),
    "ml_svm_classifier_binary_poly_softmax": lambda: svm_classifier_case(
        _X4, [3, 7], [0.5, -0.3, 0.8, -0.2, 0.4], [0.1], _SV[:5], [3, 2], "POLY",
        [0.5, 0.5, 3.0], "SOFTMAX"),
    "ml_svm_classifier_liblinear_three": lambda: svm_classifier_case(
        _X4, [1, 2, 3], _COEF3, [0.2]),
    "ml_svm_classifier_liblinear_binary_positive": lambda: svm_classifier_case(
        np.abs(_X4) * 0.2, [0, 1], [0.1, 0.2, 0.0, 0.3, 0.4, 0.1, 0.2, 0.0], [0.1]),
    "ml_imputer_nan_per_feature": lambda: imputer_case(
        np.array([[1.0, np.nan, 3.0], [np.nan, 5.0, np.nan]], np.float32), [10.0, 20.0, 30.0],
        float("nan")),
    "ml_imputer_value_one_for_all": lambda: imputer_case(
        np.array([[1.0, -1.0], [-1.0, 2.0]], np.float32), [0.5], -1.0),
    "ml_imputer_int64": lambda: imputer_case(
        np.array([[0, 7, 0], [3, 0, 1]], np.int64), [9, 8, 7], 0),
    "ml_feature_vectorizer_pad_and_cut": lambda: feature_vectorizer_case(
        [_X4[:, :2], _rng.standard_normal((5, 3)).astype(np.float32),
         _rng.standard_normal((5, 1, 2)).astype(np.float32)], [3, 2, 2]),
    "ml_feature_vectorizer_int64_1d": lambda: feature_vectorizer_case(
        [np.array([4, 5], np.int64), np.array([6, 7, 8], np.int64)], [2, 3]),
    "ml_one_hot_encoder_int64_unknown": lambda: one_hot_encoder_case(
        np.array([[1, 3, 9], [7, 1, 3]], np.int64), [3, 1, 7]),
    "ml_one_hot_encoder_float_truncated_zeros0": lambda: one_hot_encoder_case(
        np.array([2.7, -1.5, 4.0, 2.0], np.float32), [2, -1, 4], zeros=0),
    "ml_one_hot_encoder_int32_1d": lambda: one_hot_encoder_case(
        np.array([5, 6, 5], np.int32), [6, 5]),
    "ml_normalizer_l2_int64_1d": lambda: normalizer_case(np.array([3, -4, 12], np.int64), "L2"),
})

def strs(*rows):
    """A numpy string tensor (object array) of the given nested lists."""
    return np.array(rows[0] if len(rows) == 1 else list(rows), dtype=object)


def strings_movement_case():
    """Pointers moved around: Transpose, Reshape, Gather, Slice, Concat, Where, Identity."""
    x = strs(["a", "bb", "ccc"], ["dd", "", "\u7684"])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
             helper.make_node("Reshape", ["t", "six"], ["r"]),
             helper.make_node("Gather", ["r", "pick"], ["g"], axis=0),
             helper.make_node("Slice", ["r", "one", "four"], ["s"]),
             helper.make_node("Concat", ["g", "s"], ["c"], axis=0),
             helper.make_node("Where", ["cond", "g", "fill"], ["w"]),
             helper.make_node("Identity", ["w"], ["i"])]
    init = [numpy_helper.from_array(np.array([6], np.int64), "six"),
            numpy_helper.from_array(np.array([5, 0, 2], np.int64), "pick"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array([4], np.int64), "four"),
            numpy_helper.from_array(strs(["X", "Y", "Z"]), "fill")]
    r = x.T.reshape(6)
    g = r[[5, 0, 2]]
    cond = np.array([True, False, True])
    w = np.where(cond, g, strs(["X", "Y", "Z"]))
    return (nodes, {"x": x, "cond": cond}, {"c": np.concatenate([g, r[1:4]]), "i": w}, 13, [],
            init)


def strings_folded_concat_case():
    """StringConcat of constants: folded by the interpreter, emitted as read-only strings."""
    nodes = [helper.make_node("StringConcat", ["a", "b"], ["ab"]),
             helper.make_node("StringConcat", ["ab", "x"], ["y"])]
    init = [numpy_helper.from_array(strs(["pre", "fix"]), "a"),
            numpy_helper.from_array(strs(["-"]), "b")]
    x = strs(["one", "two"])
    return nodes, {"x": x}, {"y": strs(["pre-one", "fix-two"])}, 20, [], init


def strings_normalizer_case(x, y, **attrs):
    return [helper.make_node("StringNormalizer", ["x"], ["y"], **attrs)], {"x": x}, {"y": y}, 10


def strings_split_case(x, delimiter=None, maxsplit=None, folded=False):
    """StringSplit, expected from Python's str.split (ASCII whitespace when no delimiter)."""
    attrs = {k: v for k, v in [("delimiter", delimiter), ("maxsplit", maxsplit)] if v is not None}
    cut = [s.split(delimiter or None, -1 if maxsplit is None else maxsplit) for s in x.flat]
    width = max(map(len, cut))
    y = np.array([c + [""] * (width - len(c)) for c in cut], dtype=object)
    y = y.reshape(x.shape + (width,))
    n = np.array([len(c) for c in cut], np.int64).reshape(x.shape)
    node = helper.make_node("StringSplit", ["x"], ["y", "n"], **attrs)
    if folded:  # a constant input: the interpreter cuts it while compiling
        return ([node, helper.make_node("Identity", ["x0"], ["x"])], {}, {"y": y, "n": n}, 20,
                [], [numpy_helper.from_array(x, "x0")])
    return [node], {"x": x}, {"y": y, "n": n}, 20


def gradient_chain_case():
    """Gradient of y = log(relu(sigmoid(((tanh(a + b) * a) @ w)) - 0.6) / sqrt(exp(z)) + 1)
    (y [2, 2], so the derivatives of its sum) with respect to a [2, 3], b [3] (broadcast), w
    [3, 2] and u (unused: zeros), in double; z is an initializer. Expected from the chain rule
    written out in numpy."""
    rng = np.random.RandomState(7)
    a, b, w = rng.randn(2, 3), rng.randn(3), rng.randn(3, 2)
    u, z = rng.randn(2), np.array([0.5, -0.25])
    c = a + b
    e = np.tanh(c)
    f = e * a
    h = f @ w
    s = 1 / (1 + np.exp(-h))
    t = s - 0.6
    r = np.maximum(t, 0)
    p = np.sqrt(np.exp(z))
    q = r / p
    dq = 1 / (q + 1)
    dh = dq / p * (t > 0) * s * (1 - s)
    df = dh @ w.T
    dc = df * a * (1 - e * e)
    grads = {"da": df * e + dc, "db": dc.sum(axis=0), "dw": f.T @ dh, "du": np.zeros(2)}
    mk = helper.make_node
    nodes = [mk("Add", ["a", "b"], ["c"]), mk("Tanh", ["c"], ["e"]), mk("Mul", ["e", "a"], ["f"]),
             mk("MatMul", ["f", "w"], ["h"]), mk("Sigmoid", ["h"], ["s"]),
             mk("Sub", ["s", "six_tenths"], ["t"]), mk("Relu", ["t"], ["r"]),
             mk("Exp", ["z"], ["ez"]), mk("Sqrt", ["ez"], ["p"]), mk("Div", ["r", "p"], ["q"]),
             mk("Add", ["q", "one"], ["q1"]), mk("Log", ["q1"], ["y"]),
             mk("Gradient", ["a", "b", "w", "u"], ["da", "db", "dw", "du"],
                domain="ai.onnx.preview.training", xs=["a", "b", "w", "u"], y="y")]
    init = [numpy_helper.from_array(np.array(0.6), "six_tenths"),
            numpy_helper.from_array(np.array(1.0), "one"), numpy_helper.from_array(z, "z")]
    y = np.log(q + 1)
    return (nodes, {"a": a, "b": b, "w": w, "u": u}, dict(grads, y=y), 13,
            [("ai.onnx.preview.training", 1)], init)


def gradient_neg_div_case():
    """Gradient of y = -x - x / v + Identity(x) with v [1] broadcast, in float32: dx = -1/v,
    dv = sum(x) / v^2."""
    x = np.array([[1.5, -2.0], [0.5, 3.0]], np.float32)
    v = np.array([2.0], np.float32)
    mk = helper.make_node
    nodes = [mk("Neg", ["x"], ["nx"]), mk("Div", ["x", "v"], ["xv"]),
             mk("Sub", ["nx", "xv"], ["d"]), mk("Identity", ["x"], ["ix"]),
             mk("Add", ["d", "ix"], ["y"]),
             mk("Gradient", ["x", "v"], ["dx", "dv"], domain="ai.onnx.preview.training",
                xs=["x", "v"], y="y")]
    dx = np.full_like(x, -1 / v[0])
    dv = np.array([x.sum() / (v[0] * v[0])], np.float32)
    return (nodes, {"x": x, "v": v}, {"dx": dx, "dv": dv}, 13,
            [("ai.onnx.preview.training", 1)])


def regex_case(pattern, x, folded=False):
    """RegexFullMatch, expected from Python's re.fullmatch with re.ASCII (\\d \\w \\s \\b ASCII, as
    in RE2) on patterns where Python and RE2 agree."""
    y = np.array([re.fullmatch(pattern, s, re.ASCII) is not None for s in x.flat])
    y = y.reshape(x.shape)
    node = helper.make_node("RegexFullMatch", ["x"], ["y"], pattern=pattern)
    if folded:  # a constant input: the interpreter matches it while compiling
        return ([node, helper.make_node("Identity", ["x0"], ["x"])], {}, {"y": y}, 20, [],
                [numpy_helper.from_array(x, "x0")])
    return [node], {"x": x}, {"y": y}, 20


def regex_many_states_case():
    """(a|b)*a(a|b){9}: the 10th letter from the end is an a, which a DFA remembers in 2^10
    states; every string of 9 to 12 letters a and b (7,680 of them)."""
    words = ["".join(w) for n in range(9, 13) for w in itertools.product("ab", repeat=n)]
    return regex_case("(a|b)*a(a|b){9}", strs(words))


def ml_case(op, x, y, opset=2, **attrs):
    node = helper.make_node(op, ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    return [node], {"x": x}, {"y": y}, 13, [("ai.onnx.ml", opset)]


CASES.update({
    "strings_movement": strings_movement_case,
    "strings_folded_concat": strings_folded_concat_case,
    "regex_classes_negated": lambda: regex_case(
        r"[a-c]+[^0-9x\s]*[\d.]", strs(["ab!!7", "abx7", "c.", "cZ\u00e9Z0", "a 1", "d1", ""])),
    "regex_repeat_bounds_lazy": lambda: regex_case(
        r"(?:ab){2,3}c{0,2}?d{2,}x{0}", strs(["ababdd", "abababccddd", "abdd", "ababcccdd",
                                               "abababababdd", "ababd", "ababccdddd"])),
    "regex_alternation_in_groups": lambda: regex_case(
        r"(foo|ba(r|zz?))+(-(x|y\d))?", strs(["foo", "barbazfoo", "bazz-y7", "ba", "foo-x",
                                                "foo-y", "bazzz", "barbar-x"])),
    "regex_anchors_in_alternation": lambda: regex_case(
        r"(^|,)\s*item\s*(,|$)", strs(["item", ",item,", "item,", " item ", "x,item", ",item",
                                        "items"])),
    "regex_word_boundaries": lambda: regex_case(
        r".*\bcat\b.*|\w+\Bing\B\w*", strs(["the cat sat", "concat", "cat", "cats", "a cat!",
                                              "singer", "ing", "kingdom", "sing"])),
    "regex_dot_utf8": lambda: regex_case(  # the pattern holds a literal \u00e9 (2 bytes)
        "a.{2}\u00e9?[^x]", strs(["abcd", "a\u00e9\u4e2d\U0001F600", "a\u00e9\u00e9\u00e9\u00e9",
                                 "a\nbc", "a\U0001F600\U0001F600x", "a\u4e2dbc\u00e9\u4e2d",
                                 "a\U0001F600\U0001F600\U0001F600", "abc"])),
    "regex_empty_string": lambda: regex_case(r"(x|)y*", strs([["", "x"], ["xy", "yx"]])),
    "regex_empty_pattern": lambda: regex_case("", strs(["", "a"])),
    "regex_escapes_flags": lambda: regex_case(
        r"\$\d+\.\d\d\t\x41(?s:.)\\(?m:$\n^)z", strs(["$12.50\tA\n\\\nz", "$1.5\tA \\\nz",
                                                 "$3.99\tAx\\\nz", "$3.99\tAx\\z"])),
    "regex_many_states": regex_many_states_case,
    "regex_folded": lambda: regex_case(
        r"www\.[\w.-]+\.\bcom\b", strs(["www.google.com", "www.a-b.c.com", "www.bbc.co.uk"]),
        folded=True),
    "gradient_chain_broadcast_matmul": gradient_chain_case,
    "gradient_neg_div_identity": gradient_neg_div_case,
    "strings_split_long_delimiter_maxsplit": lambda: strings_split_case(
        strs(["aXYbXYXYcXYd", "XY"], ["", "no delimiter"]), delimiter="XY", maxsplit=3),
    "strings_split_whitespace_kinds_maxsplit": lambda: strings_split_case(
        strs(["\tone\ntwo\x1cthree \r", "  ", "\u00e9 \u00e9  tail  "]), maxsplit=1),
    "strings_split_folded": lambda: strings_split_case(
        strs(["a,b,,c", ",", "abc"]), delimiter=",", folded=True),
    "strings_equal_broadcast_2d": lambda: (
        [helper.make_node("Equal", ["x", "w"], ["y"])],
        {"x": strs(["a", "b"], ["b", "a"]), "w": strs(["b", "b"])},
        {"y": np.array([[False, True], [True, False]])}, 19),
    "strings_normalizer_lower_utf8_kept": lambda: strings_normalizer_case(
        strs(["ABC", "\u00c9t\u00c9", "MiXeD"]), strs(["abc", "\u00c9t\u00c9", "mixed"]),
        case_change_action="LOWER"),
    "strings_normalizer_insensitive_stopwords_none_left": lambda: strings_normalizer_case(
        strs([["The", "tHe", "THE"]]), strs([[""]]), stopwords=["the"],
        case_change_action="UPPER"),
    "strings_normalizer_sensitive_keeps_other_case": lambda: strings_normalizer_case(
        strs(["The", "the", "cat", "the"]), strs(["The", "cat"]), stopwords=["the"],
        is_case_sensitive=1),
    "label_encoder_int64_to_string": lambda: ml_case(
        "LabelEncoder", np.array([[3, 1], [7, 3]], np.int64),
        strs(["three", "one"], ["none", "three"]), keys_int64s=[1, 3, 3],
        values_strings=["one", "three", "shadowed"], default_string="none"),
    "label_encoder_float_to_float": lambda: ml_case(
        "LabelEncoder", np.array([0.5, 2.0, -1.0], np.float32),
        np.array([5.0, 20.0, -0.0], np.float32), keys_floats=[0.5, 2.0],
        values_floats=[5.0, 20.0]),
    "label_encoder_v1_string_to_index": lambda: ml_case(
        "LabelEncoder", strs(["b", "z", "a"]), np.array([1, 9, 0], np.int64), opset=1,
        classes_strings=["a", "b"], default_int64=9),
    "category_mapper_string_to_int": lambda: ml_case(
        "CategoryMapper", strs(["cat", "dog", "eel"]), np.array([2, 4, -1], np.int64),
        opset=1, cats_strings=["cat", "dog"], cats_int64s=[2, 4]),
    "category_mapper_int_to_string": lambda: ml_case(
        "CategoryMapper", np.array([4, 5, 2], np.int64), strs(["dog", "?", "cat"]), opset=1,
        cats_strings=["cat", "dog"], cats_int64s=[2, 4], default_string="?"),
})


HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared",
                       "onnx-backend-tests", "node")


# ---- ai.onnx.ml TreeEnsembleRegressor / TreeEnsembleClassifier (opset 1 and 3), as ONNX
# Runtime computes them: the root of a tree is its first node in the list; leaves sum their
# weights per target in float32; a target or class no reached leaf names has no score (0, or
# left out of the label's choice); two-class classifiers follow ONNX Runtime's binary rules.

_LEGACY_TESTS = {"BRANCH_LEQ": np.less_equal, "BRANCH_LT": np.less,
                 "BRANCH_GTE": np.greater_equal, "BRANCH_GT": np.greater,
                 "BRANCH_EQ": np.equal, "BRANCH_NEQ": np.not_equal}


def _legacy_reached(x, t, prefix):
    """Per row of x: the (id, weight) lists of the leaves it reaches, one per tree."""
    trees, ids = t["nodes_treeids"], t["nodes_nodeids"]
    at = {(tr, nd): i for i, (tr, nd) in enumerate(zip(trees, ids))}
    roots = [i for i in range(len(trees)) if i == 0 or trees[i] != trees[i - 1]]
    weights = {}
    for tr, nd, k, w in zip(t[prefix + "_treeids"], t[prefix + "_nodeids"], t[prefix + "_ids"],
                            t[prefix + "_weights"]):
        weights.setdefault(at[(tr, nd)], []).append((k, np.float32(w)))
    missing = t.get("nodes_missing_value_tracks_true", [0] * len(trees))
    rows = []
    for row in (x.reshape(-1, 1) if x.ndim == 1 else x).astype(np.float64):
        reached = []
        for i in roots:
            while t["nodes_modes"][i] != "LEAF":
                v = row[t["nodes_featureids"][i]]
                split = np.float64(np.float32(t["nodes_values"][i]))
                go = bool(_LEGACY_TESTS[t["nodes_modes"][i]](v, split)) or \
                    (missing[i] == 1 and np.isnan(v))
                i = at[(trees[i], t["nodes_truenodeids" if go else "nodes_falsenodeids"][i])]
            reached.append(weights.get(i, []))
        rows.append(reached)
    return rows


def legacy_regressor_expected(x, t):
    nt, agg = t["n_targets"], t.get("aggregate_function", "SUM")
    base = np.float32(t.get("base_values", [0] * nt))
    out = []
    for leaves in _legacy_reached(x, t, "target"):
        s, has = np.zeros(nt, np.float32), np.zeros(nt, bool)
        for ws in leaves:
            for k, w in ws:
                if agg in ("SUM", "AVERAGE"):
                    s[k] += w
                else:
                    s[k] = w if not has[k] else (min if agg == "MIN" else max)(s[k], w)
                has[k] = True
        if agg == "AVERAGE":
            s /= np.float32(len(leaves))
        s = s + base
        out.append(np.where(has, s, 0) if nt > 1 else s)  # no score: 0, base or not
    return _transform(np.array(out), t.get("post_transform", "NONE")).astype(np.float32)


def legacy_classifier_expected(x, t):
    labels, pt = t["classlabels_int64s"], t.get("post_transform", "NONE")
    nc, base = len(labels), [np.float32(b) for b in t.get("base_values", [])]
    binary_case = nc == 2 and len(set(t["class_ids"])) == 1
    all_positive = all(w >= 0 for w in t["class_weights"])
    ys, zs = [], []
    for leaves in _legacy_reached(x, t, "class"):
        s, has = np.zeros(nc, np.float32), np.zeros(nc, bool)
        for ws in leaves:
            for k, w in ws:
                s[k] += w
                has[k] = True
        if nc > 2:
            if base:
                s, has = s + np.float32(base), np.ones(nc, bool)
            best = max((k for k in range(nc) if has[k]), key=lambda k: (s[k], -k))
            ys.append(labels[best])
            zs.append(_transform(s[None, :], pt)[0])
            continue
        if len(base) == 2:
            scores = [-(base[1] + s[0]), base[1] + s[0]] if has[1] else [s[0] + base[0],
                                                                          s[1] + base[1]]
        else:
            s0 = s[0] + (base[0] if base else np.float32(0))
            scores = [s0, s[1]] if has[1] else [s0]
        pos = scores[1] if has[1] else scores[0] if has[0] else 0
        if binary_case:
            ys.append(labels[1] if pos > (0.5 if all_positive else 0) else labels[0])
        else:
            ys.append(1 if pos > 0 else 0)
        scores = [v if h else np.float32(0) for v, h in zip(scores, has)]  # no score: 0
        a = np.float64(scores[0])
        if len(scores) == 2:
            zs.append(_transform(np.array([scores], np.float32), pt)[0])
        elif pt == "PROBIT":
            zs.append([_probit(np.array([a]))[0], 0])
        elif not binary_case and len(base) == 1:
            zs.append([a, 0])
        elif pt == "LOGISTIC":
            zs.append([1 / (1 + np.exp(a)), 1 / (1 + np.exp(-a))])
        elif binary_case and all_positive:
            zs.append([1 - a, a])
        else:
            zs.append([-a, a])
    return np.array(ys, np.int64), np.array(zs, np.float64).astype(np.float32)


def legacy_tree_case(op, x, as_tensor=False, **t):
    attrs = dict(t)
    floats = ("nodes_values", "base_values", "target_weights", "class_weights")
    if as_tensor:  # opset 3: the float lists as tensors
        for k in floats:
            if k in attrs:
                attrs[k + "_as_tensor"] = helper.make_tensor(k, TensorProto.FLOAT,
                                                             (len(attrs[k]),), attrs.pop(k))
    node = helper.make_node(op, ["x"], ["y"] if op.endswith("Regressor") else ["y", "z"],
                            domain="ai.onnx.ml", **attrs)
    if op.endswith("Regressor"):
        outputs = {"y": legacy_regressor_expected(x, t)}
    else:
        y, z = legacy_classifier_expected(x, t)
        outputs = {"y": y, "z": z}
    return [node], {"x": x}, outputs, 17, [("ai.onnx.ml", 3 if as_tensor else 1)]


def _random_forest(n_trees, depth, n_features, seed, leaf_weights):
    """Full trees of `depth` levels (BRANCH_LEQ), node ids breadth-first, root 0; each leaf's
    (id, weight) list from leaf_weights(rng, tree, leaf)."""
    rng = np.random.default_rng(seed)
    t = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids")}
    w = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for tree in range(n_trees):
        for node in range(2 ** (depth + 1) - 1):
            leaf = node >= 2 ** depth - 1
            t["nodes_treeids"].append(tree)
            t["nodes_nodeids"].append(node)
            t["nodes_featureids"].append(0 if leaf else int(rng.integers(n_features)))
            t["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            t["nodes_values"].append(0.0 if leaf else float(np.round(rng.normal(), 3)))
            t["nodes_truenodeids"].append(0 if leaf else 2 * node + 1)
            t["nodes_falsenodeids"].append(0 if leaf else 2 * node + 2)
            if leaf:
                for k, v in leaf_weights(rng, tree, node):
                    for key, val in zip(("treeids", "nodeids", "ids", "weights"),
                                        (tree, node, k, v)):
                        w[key].append(val)
    return t, w


def _weights(prefix, w):
    return {f"{prefix}_{k}": v for k, v in w.items()}


_XT = np.random.default_rng(7).standard_normal((8, 4)).astype(np.float32)
_rf_nodes, _rf_w = _random_forest(4, 3, 4, 1, lambda rng, tree, node:
                                  [(0, float(np.round(rng.normal(), 3)))])
_gb_nodes, _gb_w = _random_forest(3, 2, 4, 2, lambda rng, tree, node:
                                  [(0, float(np.round(rng.normal() * 0.5, 3)))])
_gb3_nodes, _gb3_w = _random_forest(6, 2, 4, 3, lambda rng, tree, node:
                                    [(tree % 3, float(np.round(rng.normal() * 0.5, 3)))])
_rfc_nodes, _rfc_w = _random_forest(3, 2, 4, 4, lambda rng, tree, node: [
    (k, float(np.round(p / 3, 4))) for k, p in enumerate(rng.dirichlet([1, 1, 1]))])
_rfc1_nodes, _rfc1_w = _random_forest(2, 2, 1, 6, lambda rng, tree, node: [
    (k, float(np.round(p / 2, 4))) for k, p in enumerate(rng.dirichlet([1, 1, 1]))])
_rfb_nodes, _rfb_w = _random_forest(3, 2, 4, 5, lambda rng, tree, node: [
    (k, float(np.round(p / 3, 4))) for k, p in enumerate(rng.dirichlet([1, 1]))])
# a decision tree with BRANCH_LT and NaN going the true way at the root, over float64 rows
_DT = dict(nodes_treeids=[0] * 7, nodes_nodeids=[0, 1, 2, 3, 4, 5, 6],
           nodes_featureids=[1, 0, 2, 0, 0, 0, 0],
           nodes_modes=["BRANCH_LT", "BRANCH_LT", "BRANCH_GT", "LEAF", "LEAF", "LEAF", "LEAF"],
           nodes_values=[1.5, 1.0, 2.5, 0, 0, 0, 0], nodes_truenodeids=[1, 3, 5, 0, 0, 0, 0],
           nodes_falsenodeids=[2, 4, 6, 0, 0, 0, 0],
           nodes_missing_value_tracks_true=[1, 0, 1, 0, 0, 0, 0])
# every mode, a leaf with two weights, a leaf with none and a tree that is one leaf (listed
# out of node order); target 2 of three is named by one leaf only
_MODES = dict(nodes_treeids=[5, 5, 5, 5, 5, 5, 5, 2, 2, 2, 9],
              nodes_nodeids=[0, 1, 2, 3, 4, 5, 6, 0, 2, 1, 0],
              nodes_featureids=[0, 1, 2, 0, 0, 0, 0, 2, 0, 0, 0],
              nodes_modes=["BRANCH_GTE", "BRANCH_EQ", "BRANCH_NEQ", "LEAF", "LEAF", "LEAF",
                           "LEAF", "BRANCH_GT", "LEAF", "LEAF", "LEAF"],
              nodes_values=[1.0, 2.0, 3.0, 0, 0, 0, 0, 2.0, 0, 0, 0],
              nodes_truenodeids=[1, 3, 5, 0, 0, 0, 0, 1, 0, 0, 0],
              nodes_falsenodeids=[2, 4, 6, 0, 0, 0, 0, 2, 0, 0, 0])
_MODES_W = dict(target_treeids=[5, 5, 5, 5, 5, 2, 2, 9, 9],
                target_nodeids=[3, 3, 4, 6, 5, 1, 2, 0, 0],
                target_ids=[0, 2, 1, 0, 1, 0, 1, 0, 1],
                target_weights=[1.0, -4.0, 2.0, 8.0, -16.0, 0.5, 0.25, 3.0, -1.0])
_XI = np.array([[1, 2, 3], [0, 2, 4], [2, 7, 3], [1, 0, 1], [-3, 2, 9]], np.int64)

CASES.update({
    "legacy_tree_regressor_forest_average": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", _XT, n_targets=1, aggregate_function="AVERAGE",
        base_values=[0.25], **_rf_nodes, **_weights("target", _rf_w)),
    "legacy_tree_regressor_lt_missing_double": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", ROWS, n_targets=2, **_DT,
        target_treeids=[0] * 5, target_nodeids=[3, 4, 5, 6, 6], target_ids=[0, 1, 0, 1, 0],
        target_weights=[1.5, -2.0, 4.0, 8.0, 0.125]),
    "legacy_tree_regressor_modes_sum_as_tensor": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", _XI.astype(np.float32), as_tensor=True, n_targets=3,
        base_values=[1, 2, 3],
        **_MODES, **_MODES_W),
    "legacy_tree_regressor_modes_min": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", _XI.astype(np.float32), n_targets=3, aggregate_function="MIN",
        **_MODES, **_MODES_W),
    "legacy_tree_regressor_modes_max_softmax_double": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", _XI.astype(np.float64), n_targets=3, aggregate_function="MAX",
        post_transform="SOFTMAX", **_MODES, **_MODES_W),
    "legacy_tree_classifier_gb_binary_logistic": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XT, classlabels_int64s=[0, 1], base_values=[0.3],
        post_transform="LOGISTIC", **_gb_nodes, **_weights("class", _gb_w)),
    "legacy_tree_classifier_gb_multiclass_softmax": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XT, classlabels_int64s=[3, 5, 7],
        base_values=[0.1, -0.2, 0.05], post_transform="SOFTMAX",
        **_gb3_nodes, **_weights("class", _gb3_w)),
    "legacy_tree_classifier_rf_three_classes_double": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XT[:, 2:3].astype(np.float64), classlabels_int64s=[10, 20, 30],
        **_rfc1_nodes, **_weights("class", _rfc1_w)),
    "legacy_tree_classifier_rf_two_classes": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XT, classlabels_int64s=[4, 9],
        **_rfb_nodes, **_weights("class", _rfb_w)),
    "legacy_tree_classifier_one_class_positive": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", ROWS.astype(np.float32), classlabels_int64s=[-1, 1], **_DT,
        class_treeids=[0] * 3, class_nodeids=[3, 5, 6], class_ids=[1] * 3,
        class_weights=[0.75, 0.25, 0.5]),
    "legacy_tree_classifier_int64": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XI, classlabels_int64s=[0, 1], **_MODES,
        **{k.replace("target", "class"): v for k, v in _MODES_W.items() if k != "target_ids"},
        class_ids=[0, 1, 1, 0, 1, 0, 1, 0, 1]),
    "legacy_tree_classifier_unreached_classes_int32": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", _XI.astype(np.int32), classlabels_int64s=[1, 2, 3],
        post_transform="SOFTMAX_ZERO", **_MODES,
        **{k.replace("target", "class"): v for k, v in _MODES_W.items()}),
    "legacy_tree_classifier_two_base_values_logistic": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", ROWS.astype(np.float32), classlabels_int64s=[0, 1],
        base_values=[0.1, 0.2], post_transform="LOGISTIC", **_DT,
        class_treeids=[0] * 6, class_nodeids=[3, 3, 4, 5, 6, 6], class_ids=[0, 1, 0, 1, 1, 0],
        class_weights=[0.5, 0.25, 0.125, 2.0, 4.0, 8.0]),
    "legacy_tree_regressor_one_target_min_logistic_empty_leaf": lambda: legacy_tree_case(
        "TreeEnsembleRegressor", ROWS.astype(np.float32), n_targets=1, aggregate_function="MIN",
        post_transform="LOGISTIC", base_values=[0.3], **_DT, target_treeids=[0] * 3,
        target_nodeids=[3, 4, 6], target_ids=[0] * 3, target_weights=[0.1, 0.2, 0.3]),
    "legacy_tree_classifier_empty_leaf_logistic": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", ROWS.astype(np.float32), classlabels_int64s=[0, 1],
        base_values=[0.1], post_transform="LOGISTIC", **_DT, class_treeids=[0] * 3,
        class_nodeids=[3, 4, 6], class_ids=[0, 1, 0], class_weights=[0.1, 0.2, 0.3]),
    "legacy_tree_classifier_binary_probit": lambda: legacy_tree_case(
        "TreeEnsembleClassifier", ROWS.astype(np.float32), classlabels_int64s=[0, 1],
        base_values=[0.05], post_transform="PROBIT", **_DT,
        class_treeids=[0] * 4, class_nodeids=[3, 4, 5, 6], class_ids=[0] * 4,
        class_weights=[0.1, -0.2, 0.3, 0.45]),
})


def frozen_input_case(test, frozen):
    """A backend test whose input `frozen` becomes an initializer (its stored value): the form a
    real model has for shape-carrying operands, since kiln needs shapes when compiling. With
    frozen=None every input is frozen, so constant folding computes the node in the kernel
    interpreter, and the compiled model only copies the folded outputs."""
    import onnx
    folder = os.path.join(BACKEND, test)
    m = onnx.load(os.path.join(folder, "model.onnx"))
    data = os.path.join(folder, "test_data_set_0")
    tensors = {}
    for kind, values in (("input", m.graph.input), ("output", m.graph.output)):
        for i, v in enumerate(values):
            t = onnx.TensorProto()
            with open(os.path.join(data, f"{kind}_{i}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            tensors[(kind, v.name)] = numpy_helper.to_array(t)
    frozen = [frozen] if frozen else [v.name for v in m.graph.input]
    inputs = {v.name: tensors[("input", v.name)] for v in m.graph.input if v.name not in frozen}
    outputs = {v.name: tensors[("output", v.name)] for v in m.graph.output}
    init = [numpy_helper.from_array(tensors[("input", f)], f) for f in frozen]
    domains = [(o.domain, o.version) for o in m.opset_import if o.domain not in ("", "ai.onnx")]
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=21)
    return list(m.graph.node), inputs, outputs, opset, domains, init


if os.path.isdir(BACKEND):
    for t in ("crop", "crop_and_pad", "crop_axes_chw", "crop_axes_hwc", "crop_negative_axes_hwc",
              "pad"):
        CASES[f"center_crop_pad_{t}_constant_shape"] = (
            lambda t=t: frozen_input_case(f"test_center_crop_pad_{t}", "shape"))
    # the new operators through the interpreter (constant folding)
    for t in ("bitcast_float64_to_int64", "bitcast_bool_to_uint8", "bitcast_uint16_to_int16",
              "linear_attention_gated_delta_gqa", "linear_attention_fp16",
              "linear_attention_prefill_with_past", "flexattention_gqa", "flexattention_fp16",
              "tfidfvectorizer_tf_batch_uniandbigrams_skip5",
              "ai_onnx_ml_tree_ensemble_set_membership", "ai_onnx_ml_tree_ensemble_single_tree",
              "top_k_smallest", "top_k_uint64", "hannwindow_symmetric", "blackmanwindow",
              "col2im_5d", "col2im_pads", "stft", "stft_with_window", "affine_grid_3d",
              "affine_grid_2d_align_corners"):
        CASES[f"{t}_folded"] = lambda t=t: frozen_input_case(f"test_{t}", None)


def write_case(folder, nodes, inputs, outputs, opset, domains=(), initializers=()):
    def info(name, a):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype)
                                             if hasattr(helper, "np_dtype_to_tensor_dtype")
                                             else numpy_helper.from_array(a).data_type,
                                             list(a.shape))
    graph = helper.make_graph(nodes, "case", [info(k, v) for k, v in inputs.items()],
                              [info(k, v) for k, v in outputs.items()], list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(dom, v) for dom, v in domains]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="kiln-op-cases")
    os.makedirs(os.path.join(folder, "test_data_set_0"))
    with open(os.path.join(folder, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    for kind, values in (("input", inputs), ("output", outputs)):
        for i, (name, a) in enumerate(values.items()):
            with open(os.path.join(folder, "test_data_set_0", f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, name).SerializeToString())
    return os.path.join(folder, "model.onnx")


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1])
    parser.add_argument("kiln")
    parser.add_argument("--filter", default="", help="only cases whose name matches this regex")
    parser.add_argument("--kiln-arg", action="append", default=[],
                        help="extra argument for `kiln check` (repeatable), e.g. "
                             "--kiln-arg=--target --kiln-arg=aarch64-linux")
    args = parser.parse_args()
    kiln = os.path.abspath(args.kiln)
    root = tempfile.mkdtemp(prefix="kiln-op-cases-")
    passed = failed = 0
    try:
        for name, make in sorted(CASES.items()):
            if not re.search(args.filter, name):
                continue
            made = make()
            path = write_case(os.path.join(root, name), *made)
            exact = ["--rtol", "0", "--atol", "0"] if name in EXACT else []
            r = subprocess.run([kiln, "check", path] + exact + args.kiln_arg,
                               capture_output=True, text=True, timeout=300)
            if r.returncode == 0:
                passed += 1
                print(f"PASS {name}")
            else:
                failed += 1
                print(f"FAIL {name}\n     " + (r.stderr.strip() or r.stdout.strip())
                      .replace("\n", "\n     "))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
