#!/usr/bin/env python3
"""A bounded batch on real models: ppocr_cls and ppocr_det (../shared/models), compiled once
with their batch dim in 1..4 and run by `kiln check` at batch 3, 2 and 1. The batch-3 and
batch-2 data sets stack the models' stored data sets (inputs along the batch, and ONNX Runtime's
outputs with them: each image is computed on its own), so every result is ORT's.

Usage: batch.py KILN MODELS_DIR [--sanitize address]
Prints one line per model and "N passed, M failed"; exits 1 on any failure (0 with a note when
MODELS_DIR lacks the models).
"""
import argparse
import os
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

from checks import Tally, run_check

MODELS = {"ppocr_cls": "x:1..4x3x48x192", "ppocr_det": "x:1..4x3x320x320"}


def tensor(path):
    return onnx.load_tensor(path)


def stacked_set(base, sets, out_dir):
    os.makedirs(out_dir)
    for kind in ("input", "output"):
        ts = [tensor(os.path.join(base, f"test_data_set_{k}", f"{kind}_0.pb")) for k in sets]
        value = np.concatenate([numpy_helper.to_array(t) for t in ts])
        with open(os.path.join(out_dir, f"{kind}_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(value, ts[0].name).SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("models")
    ap.add_argument("--sanitize")
    a = ap.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="kiln-batch-") as root:
        for name, shape in MODELS.items():
            base = os.path.join(a.models, name)
            if not os.path.exists(os.path.join(base, "model.onnx")):
                print(f"note: {base} is missing; skipped")
                continue
            dirs = []
            for label, sets in (("batch3", [0, 1, 2]), ("batch2", [2, 0])):
                d = os.path.join(root, name, label)
                stacked_set(base, sets, d)
                dirs += ["--data", d]
            dirs += ["--data", os.path.join(base, "test_data_set_1")]
            args = ["--shape", shape, "--rtol", "1e-3", "--atol", "1e-4"] + dirs
            ok = run_check(a.kiln, os.path.join(base, "model.onnx"), args,
                           f"{name} ({shape}; batch 3, 2, 1)", a.sanitize)
            tally.add(ok)
    tally.finish()


if __name__ == "__main__":
    main()
