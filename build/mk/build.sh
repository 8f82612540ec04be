#!/bin/sh
# make all: compile the TypeScript and bundle every program with the koffi
# binary for the target (layout OS + architecture), unless the knob or the
# architecture says to build nothing. KOFFI_PLATFORMS (space-separated)
# bundles other platforms too (make port-tarball uses it).
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
$NPM run build
KOFFI_PLATFORMS=${KOFFI_PLATFORMS:-$KOFFI_PLATFORM} node build/mk/bundle.js
