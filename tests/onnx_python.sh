#!/bin/sh
# Runs a test script with a Python that has the onnx and numpy modules (Debian's
# /usr/bin/python3 when the default python3 has not): the bad-inputs, control and op-cases
# suites build their models with python3-onnx.
# Usage: tests/onnx_python.sh SCRIPT.py ARGS...   e.g. tests/onnx_python.sh tests/control/run.py KILN --target T
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SCRIPT.py ARGS..." >&2; exit 2; }
for py in python3 /usr/bin/python3; do
    if "$py" -c "import onnx, numpy" 2>/dev/null; then
        exec "$py" "$@"
    fi
done
echo "$0: no python3 with the onnx and numpy modules (apt install python3-onnx)" >&2
exit 1
