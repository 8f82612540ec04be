#!/bin/sh
# Build the native helpers into dist/native/ (Linux only; elsewhere it
# says so in one line and succeeds):
#   hvguest-freeze-guard  the VSS daemon's SIGKILL guard
#                         (vss/guard/hvguest-freeze-guard.c), which the
#                         daemon prefers to the node guard (vss/guard-main.ts)
#   hvsim-fuse            the simulator's FUSE front-end (sim/fuse/hvsim-fuse.c)
# Both are optional: without a C compiler (or, for hvsim-fuse, libfuse3's
# pkg-config data) each prints one line and the build succeeds; the daemon
# then uses the node guard, and `hvsim serve --fuse` says the front-end was
# not built.
set -eu
cd "$(dirname "$0")/.."
cc=${CC:-cc}
if [ "$(uname -s)" != Linux ]; then
	echo "native.sh: nothing to build on $(uname -s) (the native helpers are Linux-only)"
	exit 0
fi
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "native.sh: native freeze guard and FUSE front-end not built (no C compiler: $cc)"
	exit 0
fi
mkdir -p dist/native
CFLAGS="-std=gnu11 -O2 -Wall -Wextra -Wconversion"

# Written to a temporary name and renamed, so a daemon starting it meanwhile never runs half a file.
guard=dist/native/hvguest-freeze-guard
# Optional like the rest: without it the VSS daemon uses the node guard.
# shellcheck disable=SC2086
if "$cc" $CFLAGS -o "$guard.tmp" vss/guard/hvguest-freeze-guard.c; then
	mv -f "$guard.tmp" "$guard"
else
	rm -f "$guard.tmp"
	echo "native.sh: native freeze guard not built (the compile failed; the VSS daemon uses the node guard)"
fi

fuse=dist/native/hvsim-fuse
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists fuse3; then
	echo "native.sh: FUSE front-end not built (pkg-config or libfuse3 development files missing)"
	exit 0
fi
# Word splitting of CFLAGS and the pkg-config output is intended.
# shellcheck disable=SC2046,SC2086
"$cc" $CFLAGS -o "$fuse.tmp" sim/fuse/hvsim-fuse.c $(pkg-config --cflags --libs fuse3)
mv -f "$fuse.tmp" "$fuse"
