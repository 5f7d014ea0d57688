#!/usr/bin/env python3
"""Write the conformance subset that bare-metal (and vector) targets are held to.

usage: make_subset.py [--size N] [--per-op K] > tests/conformance/bare-metal.txt

A whole run of passing.txt under qemu-system takes longer than CI can give every emulated
target, so they run a subset: every operator that any passing test uses keeps its K smallest
tests (bytes of model and data, which is also what must fit in a microcontroller board's
memory), so every operator family of the op table is covered; then the smallest remaining
tests fill the list up to N. Deterministic: the same data gives the same list.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (the runner's protobuf walk that lists a model's operators)


def test_bytes(folder):
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=run.DEFAULT_DATA)
    ap.add_argument("--list", default=run.DEFAULT_LIST)
    ap.add_argument("--size", type=int, default=330)
    ap.add_argument("--per-op", type=int, default=3)
    ap.add_argument("--max-bytes", type=int, default=1 << 20,
                    help="skip tests bigger than this (model and data, bytes)")
    args = ap.parse_args()
    tests = sorted(run.read_list(args.list))
    info = {}
    for name in tests:
        folder = os.path.join(args.data, name)
        size = test_bytes(folder)
        if size <= args.max_bytes:
            info[name] = (size, run.model_ops(os.path.join(folder, "model.onnx")))
    by_op = {}
    for name, (size, ops) in info.items():
        for op in ops:
            by_op.setdefault(op, []).append((size, name))
    chosen = set()
    for op in sorted(by_op):
        for _, name in sorted(by_op[op])[:args.per_op]:
            chosen.add(name)
    for _, name in sorted((size, name) for name, (size, _) in info.items()):
        if len(chosen) >= args.size:
            break
        chosen.add(name)
    print("# Conformance subset for emulated bare-metal and vector targets, written by")
    print("# tests/conformance/make_subset.py --size %d --per-op %d: the %d smallest passing tests"
          % (args.size, args.per_op, args.per_op))
    print("# of every operator (%d operators), filled up with the smallest others." % len(by_op))
    for name in sorted(chosen):
        print(name)


if __name__ == "__main__":
    main()
