#!/bin/sh
# make all: compile the TypeScript and bundle every program with the koffi
# binary for the target (layout OS + architecture), unless the knob or the
# architecture says to build nothing. KOFFI_PLATFORMS (space-separated)
# bundles other platforms too (make port-tarball uses it); BUNDLE is the
# output directory (default bundle/).
set -eu
cd "$(dirname "$0")/../.."
. build/mk/hyperv.sh
. build/mk/layout.sh

# hv_gate: 1 = knob or architecture says no (not an error), 2 = bad value.
hv_gate || { rc=$?; [ "$rc" -eq 1 ] && exit 0; exit "$rc"; }
hv_layout
echo "$HV_LINE (layout $LAYOUT)"

NPM=${NPM:-npm}
if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
	$NPM install --no-audit --no-fund
	touch node_modules
fi
# Compile unless dist/ is newer than every TypeScript source (tests run
# `make all` while other tests use dist/: no rewrite when nothing changed).
stale=
if [ -f dist/kvp/main.js ]; then
	stale=$(find . \( -name node_modules -o -name dist -o -name .git -o -name bundle \) -prune -o \
		\( -name '*.ts' ! -name '*.test.ts' -o -name tsconfig.json \) -newer dist/kvp/main.js -print | head -n 1)
else
	stale=dist/
fi
if [ -n "$stale" ]; then
	$NPM run build
else
	echo "hvguest: dist/ is up to date"
fi
KOFFI_PLATFORMS=${KOFFI_PLATFORMS:-$KOFFI_PLATFORM} node build/mk/bundle.js
