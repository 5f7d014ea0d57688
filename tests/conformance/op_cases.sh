#!/bin/sh
# Operator cases the backend tests leave out (op_cases.py), run with a Python that has onnx and
# numpy (Debian's /usr/bin/python3 when the default has not).
# Usage: tests/conformance/op_cases.sh KILN
set -eu
[ $# -eq 1 ] || { echo "usage: $0 KILN" >&2; exit 2; }
here=$(dirname "$0")
for py in python3 /usr/bin/python3; do
    if "$py" -c "import onnx, numpy" 2>/dev/null; then
        exec "$py" "$here/op_cases.py" "$1"
    fi
done
echo "$0: no python3 with the onnx and numpy modules (apt install python3-onnx)" >&2
exit 1
