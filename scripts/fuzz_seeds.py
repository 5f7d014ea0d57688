#!/usr/bin/env python3
"""Seed corpus for kiln's fuzz targets, made from the ONNX backend tests.

Usage: fuzz_seeds.py --kind model|tensor|codegen BACKEND_TESTS_DIR OUT_DIR

  model    every model.onnx up to 16 KiB (loader, passes, lowering, planner)
  tensor   input_K.pb / output_K.pb up to 4 KiB, one data set per test
  codegen  model.onnx up to 4 KiB of the tests kiln passes (tests/conformance/passing.txt),
           so that mutations start from models that reach the LLVM back end

Files are copied under names made from the test's path, so that reruns give the same corpus;
nothing is committed (the backend tests are in ../shared). At most --limit files (default
400) are taken, spread evenly over the sorted list, to keep a 60 s smoke run mostly fuzzing
rather than replaying seeds.
"""
import argparse
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def passing_tests():
    path = os.path.join(REPO, "tests", "conformance", "passing.txt")
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def candidates(root, kind):
    """(name, path) pairs in a stable order."""
    wanted = passing_tests() if kind == "codegen" else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if kind in ("model", "codegen") and "model.onnx" in filenames:
            if wanted is not None and rel not in wanted:
                continue
            limit = 16384 if kind == "model" else 4096
            path = os.path.join(dirpath, "model.onnx")
            if os.path.getsize(path) <= limit:
                yield rel.replace("/", "__") + ".onnx", path
        if kind == "tensor" and os.path.basename(dirpath) == "test_data_set_0":
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.endswith(".pb") and os.path.getsize(path) <= 4096:
                    yield (os.path.dirname(rel) + "__" + name).replace("/", "__"), path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", required=True, choices=["model", "tensor", "codegen"])
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("tests")
    ap.add_argument("out")
    args = ap.parse_args()
    found = list(candidates(args.tests, args.kind))
    if not found:
        sys.exit(f"fuzz_seeds.py: no {args.kind} seeds under {args.tests}")
    step = max(1, len(found) // args.limit)
    chosen = found[::step][: args.limit]
    os.makedirs(args.out, exist_ok=True)
    for name, path in chosen:
        shutil.copyfile(path, os.path.join(args.out, name))
    print(f"seeds: {len(chosen)} {args.kind} files of {len(found)} under {args.tests}")


if __name__ == "__main__":
    main()
