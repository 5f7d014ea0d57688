#!/usr/bin/env python3
"""Operator cases the ONNX backend tests leave out, run through `kiln check`.

Usage: op_cases.py KILN

The backend tests of some operators cover one corner only (TfIdfVectorizer: mode TF alone). Each
case here writes a model, inputs and expected outputs (computed by a small, independent Python
model of the operator's semantics, written from the ONNX specification) into a temporary
folder in the backend tests' layout, then runs `kiln check` on it. Prints one line per case and
"N passed, M failed"; exits 1 on any failure.
"""
import os
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
    return [node], {"x": x}, {"y": y}, 9


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


def write_case(folder, nodes, inputs, outputs, opset, domains=()):
    def info(name, a):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype)
                                             if hasattr(helper, "np_dtype_to_tensor_dtype")
                                             else numpy_helper.from_array(a).data_type,
                                             list(a.shape))
    graph = helper.make_graph(nodes, "case", [info(k, v) for k, v in inputs.items()],
                              [info(k, v) for k, v in outputs.items()])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
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
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    kiln = os.path.abspath(sys.argv[1])
    root = tempfile.mkdtemp(prefix="kiln-op-cases-")
    passed = failed = 0
    try:
        for name, make in sorted(CASES.items()):
            made = make()
            path = write_case(os.path.join(root, name), *made)
            r = subprocess.run([kiln, "check", path], capture_output=True, text=True,
                               timeout=300)
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
