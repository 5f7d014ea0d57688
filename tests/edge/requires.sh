#!/bin/sh
# requires.sh TOOL... -- COMMAND [ARG...]: run COMMAND when every TOOL is on PATH; otherwise say
# which is missing and exit 77, which meson counts as a skip (not a pass).
# The emulated-target tests need QEMU and cross toolchains that scripts/setup.sh installs; a
# machine without them skips those tests visibly instead of failing or passing them.
missing=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    command -v "$1" >/dev/null 2>&1 || missing="$missing $1"
    shift
done
[ $# -gt 0 ] && shift
if [ -n "$missing" ]; then
    echo "SKIP: not installed:$missing (scripts/setup.sh installs them)"
    exit 77
fi
exec "$@"
