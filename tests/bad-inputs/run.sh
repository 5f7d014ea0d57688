#!/bin/sh
# Bad inputs: one clear error, exit status 1 and no output for each kind of broken model.
# Usage: tests/bad-inputs/run.sh KILN
# The cases live in run.py (they build the broken models with python3-onnx); this wrapper only
# finds a Python that has onnx and numpy (Debian's /usr/bin/python3 when the default has not).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 KILN" >&2; exit 2; }
here=$(dirname "$0")
for py in python3 /usr/bin/python3; do
    if "$py" -c "import onnx, numpy" 2>/dev/null; then
        exec "$py" "$here/run.py" "$1"
    fi
done
echo "$0: no python3 with the onnx and numpy modules (apt install python3-onnx)" >&2
exit 1
