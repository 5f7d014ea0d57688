"""Writing test models and data sets in the backend tests' layout, for the scripts that make
their own cases (tests/control, tests/sequences, tests/bounded, tests/data_dependent):
model.onnx in a folder of its own, and each data set's input_I.pb / output_I.pb (TensorProtos
named after the graph's inputs and outputs, in order)."""
import os
import subprocess

import numpy as np
from onnx import numpy_helper


def write_model(root, name, model):
    """root/name/model.onnx; returns (the folder, the model's path)."""
    d = os.path.join(root, name)
    os.mkdir(d)
    path = os.path.join(d, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return d, path


def write_set(folder, model, inputs, outputs):
    """One data set: the values of the graph's inputs and outputs, in their order."""
    os.mkdir(folder)
    for prefix, values, infos in (("input", inputs, model.graph.input),
                                  ("output", outputs, model.graph.output)):
        for i, (value, info) in enumerate(zip(values, infos)):
            t = numpy_helper.from_array(np.asarray(value), info.name)
            with open(os.path.join(folder, f"{prefix}_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def run_check(kiln, path, extra):
    """`kiln check` on one model: (exit status, its output)."""
    r = subprocess.run([kiln, "check", path] + extra, capture_output=True, text=True,
                       timeout=300)
    return r.returncode, r.stdout + r.stderr


def check_options(a):
    """The kiln check arguments for the scripts' --target and --sanitize options."""
    return (["--target", a.target] if a.target else []) + \
        (["--sanitize", a.sanitize] if a.sanitize else [])
