#!/bin/sh
# Build the simulator's FUSE front-end (sim/fuse/hvsim-fuse.c) into
# dist/native/hvsim-fuse. Optional: without a C compiler or libfuse3's
# pkg-config data it prints one line and succeeds, and `hvsim serve --fuse`
# then says the front-end was not built.
set -eu
cd "$(dirname "$0")/.."
src=sim/fuse/hvsim-fuse.c
out=dist/native/hvsim-fuse
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "native.sh: FUSE front-end not built (no C compiler: $cc)"
	exit 0
fi
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists fuse3; then
	echo "native.sh: FUSE front-end not built (pkg-config or libfuse3 development files missing)"
	exit 0
fi
mkdir -p dist/native
# Word splitting of the pkg-config output is intended.
# shellcheck disable=SC2046
"$cc" -std=gnu11 -O2 -Wall -Wextra -o "$out.tmp" "$src" $(pkg-config --cflags --libs fuse3)
mv -f "$out.tmp" "$out"
