#!/usr/bin/env python3
"""A bounded batch on real models: ppocr_cls, ppocr_det and silero_vad_v5 (../shared/models),
compiled once with their batch dim in 1..4 and run by `kiln check` at batch 3, 2 and 1. The
batch-3 and batch-2 data sets stack the models' stored data sets (inputs along the batch, and
ONNX Runtime's outputs with them: each item is computed on its own), so every result is ORT's.

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

# model: (bindings, the batch axis of each input and output, in order; None: not batched)
MODELS = {"ppocr_cls": (["x:1..4x3x48x192"], [0], [0]),
          "ppocr_det": (["x:1..4x3x320x320"], [0], [0]),
          # (silero's state and stateN hold the batch second: [2, batch, 128]; sr is a scalar)
          "silero_vad_v5": (["input:1..4x512", "state:2x1..4x128"], [0, 1, None], [0, 1])}


def tensor(path):
    return onnx.load_tensor(path)


def stacked_set(base, sets, axes, out_dir):
    """The data sets `sets` stacked along each tensor's batch axis (axes: input axes, then
    output axes; None keeps the first set's tensor)."""
    os.makedirs(out_dir)
    for kind, kind_axes in zip(("input", "output"), axes):
        for i, axis in enumerate(kind_axes):
            ts = [tensor(os.path.join(base, f"test_data_set_{k}", f"{kind}_{i}.pb"))
                  for k in sets]
            values = [numpy_helper.to_array(t) for t in ts]
            value = values[0] if axis is None else np.concatenate(values, axis=axis)
            with open(os.path.join(out_dir, f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(value, ts[0].name).SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("models")
    ap.add_argument("--sanitize")
    a = ap.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="kiln-batch-") as root:
        for name, (shapes, in_axes, out_axes) in MODELS.items():
            base = os.path.join(a.models, name)
            if not os.path.exists(os.path.join(base, "model.onnx")):
                print(f"note: {base} is missing; skipped")
                continue
            dirs = []
            for label, sets in (("batch3", [0, 1, 2]), ("batch2", [2, 0])):
                d = os.path.join(root, name, label)
                stacked_set(base, sets, (in_axes, out_axes), d)
                dirs += ["--data", d]
            dirs += ["--data", os.path.join(base, "test_data_set_1")]
            args = ["--rtol", "1e-3", "--atol", "1e-4"] + dirs
            for s in shapes:
                args += ["--shape", s]
            ok = run_check(a.kiln, os.path.join(base, "model.onnx"), args,
                           f"{name} ({' '.join(shapes)}; batch 3, 2, 1)", a.sanitize)
            tally.add(ok)
    tally.finish()


if __name__ == "__main__":
    main()
