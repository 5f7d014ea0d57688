#!/usr/bin/env python3
"""Compile-only test of the CUDA back end: every model through NVRTC, every cubin checked.

Usage:
  cubins.py KILN [--archs 80,90] [--list passing.txt] [--data DIR] [--models DIR]
            [--jobs N] [--filter REGEX]

For each test of the conformance passing list (the tests kiln passes on the CPU) and each
shared model kiln compiles, and for each architecture, `kiln compile --target cuda-smXX
--emit cubin`: kiln prints the kernels as CUDA C, NVRTC compiles them, and kiln checks the
cubin (a CUDA ELF for that sm defining every kernel and the weights) before writing it. Where
the toolkit has cuobjdump or nvdisasm, each cubin is also disassembled by them. Models with
symbolic input dims are bound from their first data set (input_N.pb), as `kiln check` does.

No GPU is needed. Without NVRTC (`kiln targets` says the CUDA targets are unavailable) the
test is skipped: exit status 77 with a message. The last line is `N passed, M failed`.
"""
import argparse
import concurrent.futures as futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared")
SKIP = 77
# The shared models kiln compiles, with the shapes their symbolic inputs are compiled at.
MODELS = ["mlp", "squeezenet1_1", "mobilenet_v2", "shufflenet_v2", "resnet18",
          "transformer_encoder", "ppocr_cls", "ppocr_det", "lstm"]


# ------------------------------------------------------------------------------------------
# Input shapes of a data set: TensorProto.dims (1) and .name (8), read with a protobuf walk
# ------------------------------------------------------------------------------------------

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def tensor_name_dims(path):
    with open(path, "rb") as f:
        buf = f.read()
    pos, dims, name = 0, [], None
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
            if num == 1:
                dims.append(val)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n, pos = _varint(buf, pos)
            chunk = buf[pos:pos + n]
            pos += n
            if num == 1:  # packed dims
                p = 0
                while p < len(chunk):
                    v, p = _varint(chunk, p)
                    dims.append(v)
            elif num == 8:
                name = chunk.decode("utf-8", "replace")
        else:
            raise ValueError("wire type %d" % wire)
    return name, dims


def shape_bindings(model):
    """--shape arguments for every input of the model's first data set."""
    folder = os.path.dirname(model)
    sets = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set_"))
    if not sets:
        return []
    args, i = [], 0
    while True:
        path = os.path.join(folder, sets[0], "input_%d.pb" % i)
        if not os.path.exists(path):
            return args
        name, dims = tensor_name_dims(path)
        if name:
            args += ["--shape", "%s:%s" % (name, "x".join(str(d) for d in dims))]
        i += 1


# ------------------------------------------------------------------------------------------
# One model, one architecture
# ------------------------------------------------------------------------------------------

def disassemblers():
    bindir = os.path.join(os.environ.get("KILN_NVRTC_ROOT", "/usr/local/cuda"), "bin")
    tools = []
    for tool, args in (("cuobjdump", ["-sass"]), ("nvdisasm", ["-c"])):
        path = shutil.which(tool) or (os.path.join(bindir, tool)
                                      if os.access(os.path.join(bindir, tool), os.X_OK) else None)
        if path:
            tools.append([path] + args)
    return tools


def compile_one(kiln, model, arch, tools, workdir, timeout):
    out = os.path.join(workdir, "m%d_%s.cubin" % (arch, re.sub(r"\W", "_", model)[-60:]))
    base = [kiln, "compile", model, "-o", out, "--emit", "cubin", "--target", "cuda-sm%d" % arch]
    why = None
    for extra in ([], None):
        cmd = base + (extra if extra is not None else shape_bindings(model))
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timed out after %d s" % timeout
        if p.returncode == 0:
            why = None
            break
        why = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[0]
        if p.returncode < 0:
            return "kiln crashed (signal %d)" % -p.returncode
        if "symbolic" not in p.stderr and "--shape" not in p.stderr:
            break
    if why:
        return why
    for tool in tools:
        p = subprocess.run(tool + [out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           errors="replace")
        if p.returncode != 0:
            return "%s rejects the cubin: %s" % (os.path.basename(tool[0]), p.stderr.strip()[:200])
    os.unlink(out)
    return None


def cuda_available(kiln):
    p = subprocess.run([kiln, "targets"], stdout=subprocess.PIPE, errors="replace")
    return any(line.startswith("             CUDA") and "available (NVRTC" in line
               for line in p.stdout.splitlines())


def read_list(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("--archs", default="80,90")
    ap.add_argument("--list", default=os.path.join(REPO, "tests", "conformance", "passing.txt"))
    ap.add_argument("--data", default=os.path.join(SHARED, "onnx-backend-tests"))
    ap.add_argument("--models", default=os.path.join(SHARED, "models"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--filter", help="only models whose name matches this regex")
    args = ap.parse_args()
    kiln = os.path.abspath(args.kiln)
    if not cuda_available(kiln):
        print("SKIP: this kiln was built without NVRTC (no CUDA toolkit): no cubins to check")
        return SKIP
    models = [os.path.join(args.data, t, "model.onnx") for t in read_list(args.list)]
    models += [os.path.join(args.models, m, "model.onnx") for m in MODELS]
    if args.filter:
        models = [m for m in models if re.search(args.filter, m)]
    archs = [int(a) for a in args.archs.split(",") if a]
    tools = disassemblers()
    print("cubins for sm_%s of %d models; second opinion: %s" % (
        ", sm_".join(map(str, archs)), len(models),
        ", ".join(os.path.basename(t[0]) for t in tools) if tools
        else "none (no cuobjdump or nvdisasm: kiln's own cubin check only)"), flush=True)
    start = time.monotonic()
    failed = []
    with tempfile.TemporaryDirectory(prefix="kiln-cubins-") as workdir, \
            futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = {pool.submit(compile_one, kiln, m, a, tools, workdir, args.timeout): (m, a)
                for m in models for a in archs}
        for job in futures.as_completed(jobs):
            why = job.result()
            if why:
                model, arch = jobs[job]
                name = os.path.relpath(os.path.dirname(model), os.path.dirname(args.data))
                failed.append("%s sm_%d: %s" % (name, arch, why))
                print("FAIL %s" % failed[-1], flush=True)
    n = len(models) * len(archs)
    print("%d cubins in %.0f s with %d jobs" % (n, time.monotonic() - start, args.jobs))
    print("%d passed, %d failed" % (n - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
