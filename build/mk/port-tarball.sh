#!/bin/sh
# make port-tarball: the distfile build/freebsd/sysutils/hvguest expects,
# hvguest-VERSION.tar.gz with everything its do-install needs and no npm:
# the bundled programs, koffi's FreeBSD binaries for amd64 (x64) and i386
# (ia32) fetched from the npm registry with `npm pack` (the platform
# packages do not install on Linux), the installer scripts, helper
# scripts, devd rules, rc.d sources and man pages. Also writes the port's
# distinfo (DISTINFO overrides where). Output: $BUNDLE/port/ (bundle/port/). Reproducible with GNU tar (file order,
# owners and times fixed; times from SOURCE_DATE_EPOCH, default the last
# commit's).
set -eu
cd "$(dirname "$0")/../.."
. build/mk/hyperv.sh

# The distfile serves amd64 and i386 whatever this machine is; only the
# knob itself can turn it off.
MACHINE_ARCH=amd64
export MACHINE_ARCH
hv_gate || { rc=$?; [ "$rc" -eq 1 ] && exit 0; exit "$rc"; }

version=$(node -p 'require("./package.json").version')
name=hvguest-$version
bundle=${BUNDLE:-bundle}
out=$bundle/port
port=build/freebsd/sysutils/hvguest
distinfo=${DISTINFO:-$port/distinfo}

# No V8 code cache: it would be made by this Node.js, not the one the port runs, and its bytes
# differ from run to run (the distfile is reproducible).
BUNDLE_CODE_CACHE=no LAYOUT=freebsd KOFFI_PLATFORMS="freebsd-x64 freebsd-ia32" sh build/mk/build.sh

rm -rf "$out"
mkdir -p "$out/$name/build/mk" "$out/$name/build/scripts" "$out/$name/build/freebsd/sysutils/hvguest"
cp -R "$bundle/hvguest" "$bundle/programs" "$out/$name/"
mkdir -p "$out/$name/bundle"
mv "$out/$name/hvguest" "$out/$name/programs" "$out/$name/bundle/"
cp build/mk/hyperv.sh build/mk/layout.sh build/mk/install.sh "$out/$name/build/mk/"
cp -R build/scripts/freebsd "$out/$name/build/scripts/"
cp -R build/freebsd/devd "$out/$name/build/freebsd/"
[ -d "$port/files" ] && cp -R "$port/files" "$out/$name/build/freebsd/sysutils/hvguest/"
mkdir -p "$out/$name/build/man"
cp build/man/*.[1-9] "$out/$name/build/man/"
cp README.md package.json "$out/$name/"

: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
tgz=$out/$name.tar.gz
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
	(cd "$out" && tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf - "$name") | gzip -9n >"$tgz"
else
	(cd "$out" && tar -cf - "$name") | gzip -9n >"$tgz"
fi

if command -v sha256sum >/dev/null 2>&1; then
	sum=$(sha256sum "$tgz" | cut -d' ' -f1)
else
	sum=$(sha256 -q "$tgz")
fi
size=$(wc -c <"$tgz" | tr -d ' ')
{
	echo "TIMESTAMP = $SOURCE_DATE_EPOCH"
	echo "SHA256 ($name.tar.gz) = $sum"
	echo "SIZE ($name.tar.gz) = $size"
} >"$distinfo"
echo "hvguest: $tgz ($size bytes) and $distinfo written; copy the tarball to the ports DISTDIR (/usr/ports/distfiles)"
