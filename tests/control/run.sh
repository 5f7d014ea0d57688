#!/bin/sh
# If and Scan end to end (the cases live in run.py); this wrapper only finds a Python that has
# onnx and numpy (Debian's /usr/bin/python3 when the default has not).
# Usage: tests/control/run.sh KILN [--target T] [--sanitize address]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 KILN [--target T] [--sanitize address]" >&2; exit 2; }
here=$(dirname "$0")
for py in python3 /usr/bin/python3; do
    if "$py" -c "import onnx, numpy" 2>/dev/null; then
        exec "$py" "$here/run.py" "$@"
    fi
done
echo "$0: no python3 with the onnx and numpy modules (apt install python3-onnx)" >&2
exit 1
