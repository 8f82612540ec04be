#!/bin/sh
# make install / make uninstall: put the bundled programs, launchers, koffi
# binary, helper scripts, service files and man pages in place for one
# layout (build/mk/layout.sh), under DESTDIR when set; or remove exactly
# those files. Needs only POSIX sh and the files of bundle/ and build/, so
# the FreeBSD port runs it from the distfile without npm.
#
#   sh build/mk/install.sh install|uninstall|list|plist
#
# list prints the destination paths; plist prints the FreeBSD port's
# pkg-plist (LAYOUT=freebsd, rc.d left to USE_RC_SUBR, the koffi CPU as
# %%KOFFI_ARCH%%).
#
# Environment besides layout.sh's: DESTDIR; BUNDLE (default bundle/, what
# `make all` wrote); INSTALL_RCD=no leaves the rc.d
# scripts out (the port's USE_RC_SUBR installs them); CC, CFLAGS, LDFLAGS
# for the native freeze guard (Linux layout only, see guard_decide).
set -eu
cd "$(dirname "$0")/../.."
. build/mk/hyperv.sh
. build/mk/layout.sh

CMD=${1:-}
case "$CMD" in
install | uninstall | list) ;;
plist)
	LAYOUT=freebsd
	INSTALL_RCD=no ;;
*)
	echo "usage: install.sh install|uninstall|list|plist" >&2
	exit 64 ;;
esac

hv_gate || { rc=$?; [ "$rc" -eq 1 ] && exit 0; exit "$rc"; }
hv_layout
DESTDIR=${DESTDIR:-}
case "$DESTDIR" in
"" | /*) ;;
*)
	echo "hvguest: DESTDIR=$DESTDIR: must be an absolute path" >&2
	exit 2 ;;
esac

BUNDLE_TOP=${BUNDLE:-bundle}
BUNDLE=$BUNDLE_TOP/hvguest
# What install put, one absolute path (without DESTDIR) a line, itself last.
MANIFEST=$LIBDIR/install-manifest
if [ "$CMD" != uninstall ]; then
	if [ ! -f "$BUNDLE_TOP/programs" ] || [ ! -f "$BUNDLE/package.json" ]; then
		echo "hvguest: $BUNDLE_TOP/ is missing or incomplete: run \`make\` (make all) first" >&2
		exit 1
	fi
	if [ ! -d "$BUNDLE/node_modules/@koromix/koffi-$KOFFI_PLATFORM" ]; then
		echo "hvguest: $BUNDLE_TOP/ has no koffi binary for $KOFFI_PLATFORM: run \`make LAYOUT=$LAYOUT\` with the same MACHINE_ARCH, or set KOFFI_PLATFORMS when bundling" >&2
		exit 1
	fi
fi

# The native freeze guard (vss/guard/hvguest-freeze-guard.c), Linux
# layout only: compiled here with CC (default cc) and installed beside the
# bundles, where the VSS daemon looks for it. Optional: without it the
# daemon runs the node guard (guard-main.js), so a missing compiler, a
# cross install with the default compiler, or a failed compile is one line,
# not an error. FreeBSD needs no guard (a UFS suspension ends when its
# descriptor closes).
GUARD_SRC=vss/guard/hvguest-freeze-guard.c
GUARD_NAME=hvguest-freeze-guard
GUARD_CC=${CC:-cc}
GUARD=no
GUARD_WHY=
GUARD_BIN=
# Sets GUARD (yes/no) and GUARD_WHY (the line saying why not; empty when
# the layout has no guard).
guard_decide() {
	GUARD=no
	GUARD_WHY=
	[ "$LAYOUT" = linux ] || return 0
	# CC may carry arguments (bmake's default is "cc -pipe" on some systems).
	_cc=${GUARD_CC%% *}
	_not="the native freeze guard is not installed (the VSS daemon will use the node guard)"
	if [ ! -f "$GUARD_SRC" ]; then
		GUARD_WHY="hvguest: no $GUARD_SRC here: $_not"
	elif ! command -v "$_cc" >/dev/null 2>&1; then
		GUARD_WHY="hvguest: no C compiler ($GUARD_CC): $_not"
	elif [ "$_cc" = cc ] && { [ "$(uname -s)" != Linux ] || [ "$(hv_arch_name "$(uname -m)")" != "$(hv_arch)" ]; }; then
		GUARD_WHY="hvguest: installing for Linux on $(hv_arch) from $(uname -s) on $(hv_arch_name "$(uname -m)"): $_not; set CC to a compiler for the target"
	else
		GUARD=yes
	fi
}

# Compile the guard into a temporary file (GUARD_BIN); on failure say so
# and go on without it.
guard_compile() {
	GUARD_BIN=$(mktemp "${TMPDIR:-/tmp}/hvguest-guard.XXXXXX")
	# Word splitting of CC, CFLAGS and LDFLAGS is intended.
	# shellcheck disable=SC2086
	if ! $GUARD_CC -std=gnu11 ${CFLAGS:--O2} ${LDFLAGS:-} -o "$GUARD_BIN" "$GUARD_SRC"; then
		echo "hvguest: $GUARD_SRC did not compile with $GUARD_CC (errors above): the native freeze guard is not installed (the VSS daemon will use the node guard)"
		GUARD=no
	fi
}

# One line per installed file: HOW MODE SOURCE DESTINATION, where HOW is
#   copy     the file as it is
#   native   the guard compiled by guard_compile (SOURCE is its C source)
#   subst    with %%PREFIX%% (and the default prefix) replaced by PREFIX
#   gzip     compressed (man pages)
#   launcher generated: #!NODEBIN and an import of SOURCE's bundle
# Destinations are absolute, without DESTDIR. install and uninstall both
# read this list, so uninstall removes exactly what install put.
files() {
	while read -r name dir; do
		case "$dir" in
		bin) echo "launcher 0755 $name $BINDIR/$name" ;;
		sbin) echo "launcher 0755 $name $SBINDIR/$name" ;;
		*)
			echo "hvguest: $BUNDLE_TOP/programs: $name has directory '$dir' (expected bin or sbin)" >&2
			return 1 ;;
		esac
	done <"$BUNDLE_TOP/programs"
	# The bundle directory, with only the target's koffi native package.
	(cd "$BUNDLE" && find . -type f | LC_ALL=C sort) | while read -r f; do
		f=${f#./}
		case "$f" in
		node_modules/@koromix/koffi-"$KOFFI_PLATFORM"/*) ;;
		node_modules/@koromix/*) continue ;;
		esac
		echo "copy 0644 $BUNDLE/$f $LIBDIR/$f"
	done
	if [ "$GUARD" = yes ]; then
		echo "native 0755 $GUARD_SRC $LIBDIR/$GUARD_NAME"
	fi
	for f in build/scripts/"$LAYOUT"/*; do
		[ -f "$f" ] || continue
		echo "subst 0755 $f $HELPERDIR/${f##*/}"
	done
	for f in build/man/*.[1-9]; do
		[ -f "$f" ] || continue
		echo "gzip 0644 $f $MANDIR/man${f##*.}/${f##*/}.gz"
	done
	case "$LAYOUT" in
	freebsd)
		if [ "${INSTALL_RCD:-yes}" != no ]; then
			for f in build/freebsd/sysutils/hvguest/files/*.in; do
				[ -f "$f" ] || continue
				b=${f##*/}
				echo "subst 0755 $f $RCDIR/${b%.in}"
			done
		fi
		for f in build/freebsd/devd/*.conf; do
			[ -f "$f" ] || continue
			echo "subst 0644 $f $DEVDDIR/${f##*/}"
		done ;;
	linux)
		for f in build/linux/systemd/*.service; do
			[ -f "$f" ] || continue
			echo "subst 0644 $f $SYSTEMDUNITDIR/${f##*/}"
		done
		for f in build/linux/udev/*.rules; do
			[ -f "$f" ] || continue
			echo "subst 0644 $f $UDEVRULESDIR/${f##*/}"
		done ;;
	esac
}

# The prefix the shipped files are written for.
case "$LAYOUT" in
freebsd) SHIPPED_PREFIX=/usr/local ;;
linux) SHIPPED_PREFIX=/usr ;;
esac

# Replace %%PREFIX%%, and the shipped prefix in the paths of this
# package's own programs and helper directory (never other programs':
# /usr/bin/nmcli stays), with PREFIX.
subst() {
	if [ "$PREFIX" = "$SHIPPED_PREFIX" ]; then
		sed -e "s|%%PREFIX%%|$PREFIX|g" "$1"
	else
		sed -e "s|%%PREFIX%%|$PREFIX|g" -e "s|$SHIPPED_PREFIX/libexec/hyperv|$PREFIX/libexec/hyperv|g" $OWN_PATHS "$1"
	fi
}

# sed expressions moving each program's shipped path under PREFIX.
OWN_PATHS=
if [ -f "$BUNDLE_TOP/programs" ]; then
	while read -r name dir; do
		OWN_PATHS="$OWN_PATHS -e s|$SHIPPED_PREFIX/bin/$name|$PREFIX/bin/$name|g -e s|$SHIPPED_PREFIX/sbin/$name|$PREFIX/sbin/$name|g"
	done <"$BUNDLE_TOP/programs"
fi

launcher() {
	cat <<LAUNCHER
#!$NODEBIN
// $1: launcher installed by hvguest's \`make install\`. It runs the bundled
// program in ../lib/hvguest, found from this file's own directory, so a
// staged tree works wherever it is copied; load.js there compiles it with
// its V8 code cache.
'use strict';
const { join } = require('node:path');
const loader = join(__dirname, '..', 'lib', 'hvguest', 'load.js');
let load;
try {
  load = require(loader);
} catch (e) {
  process.stderr.write('$1: cannot load ' + loader + ' (' + e.message + ')\\n');
  process.exit(70);
}
load.run('$1', process.argv.slice(2));
LAUNCHER
}

TMPF=
TMPL=
trap 'rm -f "$TMPF" "$TMPL" "$GUARD_BIN"' EXIT INT TERM

# rmdir DIR and its parents while empty, up to (not including) STOP.
prune() {
	d=$1
	while [ "$d" != "$2" ] && [ "$d" != / ] && [ -n "$d" ]; do
		rmdir "$d" 2>/dev/null || return 0
		d=${d%/*}
	done
}

# After removing installed path DST: its directory and empty parents go,
# in a staging tree (DESTDIR) up to DESTDIR, on a live system only
# hvguest's own directories.
prune_after() {
	if [ -n "$DESTDIR" ]; then
		prune "$DESTDIR${1%/*}" "$DESTDIR"
	else
		case "$1" in
		"$LIBDIR"/*) prune "${1%/*}" "${LIBDIR%/*}" ;;
		"$HELPERDIR"/*) prune "${1%/*}" "${HELPERDIR%/*}" ;;
		esac
	fi
}

# Fail with one clear line, before anything is changed, when a target
# directory cannot be written (typically: not root and no DESTDIR).
check_writable() {
	for d in $(files | while read -r how mode src dst; do echo "${dst%/*}"; done | LC_ALL=C sort -u); do
		t=$DESTDIR$d
		while [ ! -e "$t" ]; do
			t=${t%/*}
			[ -n "$t" ] || t=/
		done
		if [ ! -d "$t" ] || [ ! -w "$t" ]; then
			echo "hvguest: cannot write to $t (for $DESTDIR$d): run \`make install\` as root, or stage into DESTDIR=DIR" >&2
			exit 77
		fi
	done
}

do_install() {
	n=0
	guard_decide
	check_writable
	if [ "$GUARD" = yes ]; then
		guard_compile
	elif [ -n "$GUARD_WHY" ]; then
		echo "$GUARD_WHY"
	fi
	TMPF=$(mktemp "${TMPDIR:-/tmp}/hvguest-install.XXXXXX")
	TMPL=$(mktemp "${TMPDIR:-/tmp}/hvguest-list.XXXXXX")
	# An earlier install's files that this one no longer has (an upgrade
	# dropped or renamed them) go, so that the new manifest still lists
	# everything hvguest put here.
	{ files | while read -r how mode src dst; do echo "$dst"; done; echo "$MANIFEST"; } >"$TMPL"
	if [ -f "$DESTDIR$MANIFEST" ]; then
		old=$(installed)
		set -f
		for dst in $old; do
			if ! grep -Fqx -- "$dst" "$TMPL"; then
				rm -f "$DESTDIR$dst"
				prune_after "$dst"
				echo "hvguest: removed $DESTDIR$dst (installed before, no longer part of hvguest)"
			fi
		done
		set +f
	fi
	files | while read -r how mode src dst; do
		target=$DESTDIR$dst
		mkdir -p "${target%/*}"
		case "$how" in
		copy) cat "$src" >"$TMPF" ;;
		native) cat "$GUARD_BIN" >"$TMPF" ;;
		subst) subst "$src" >"$TMPF" ;;
		gzip) gzip -9nc "$src" >"$TMPF" ;;
		launcher) launcher "$src" >"$TMPF" ;;
		esac
		# Replace, never write through: a running daemon keeps its old file.
		rm -f "$target"
		cp "$TMPF" "$target"
		chmod "$mode" "$target"
	done
	rm -f "$DESTDIR$MANIFEST"
	cp "$TMPL" "$DESTDIR$MANIFEST"
	chmod 0644 "$DESTDIR$MANIFEST"
	n=$(wc -l <"$DESTDIR$MANIFEST" | tr -d ' ')
	echo "hvguest: installed $n files for $LAYOUT under ${DESTDIR}$PREFIX"
}

# The installed paths, from the manifest install wrote.
installed() {
	while read -r dst; do
		case "$dst" in
		/*/../* | /*/./* | */.. | */.)
			echo "hvguest: $DESTDIR$MANIFEST: suspicious path $dst" >&2
			return 1 ;;
		/?*) echo "$dst" ;;
		"") ;;
		*)
			echo "hvguest: $DESTDIR$MANIFEST: not an absolute path: $dst" >&2
			return 1 ;;
		esac
	done <"$DESTDIR$MANIFEST"
}

do_uninstall() {
	# Without the manifest nothing here is known to be hvguest's: files of
	# the same names may belong to another package (Debian's hyperv-daemons
	# installs /usr/sbin/hv_kvp_daemon and the same unit names), so remove
	# nothing rather than guess.
	if [ ! -f "$DESTDIR$MANIFEST" ]; then
		echo "hvguest: no $DESTDIR$MANIFEST: hvguest is not installed for $LAYOUT under ${DESTDIR}$PREFIX; removing nothing"
		return 0
	fi
	list=$(installed)
	set -f
	# Everything else before the manifest, so an interrupted uninstall can run again.
	for dst in $list; do
		[ "$dst" = "$MANIFEST" ] || rm -f "$DESTDIR$dst"
	done
	rm -f "$DESTDIR$MANIFEST"
	for dst in $list; do
		prune_after "$dst"
	done
	echo "hvguest: removed hvguest's files for $LAYOUT from ${DESTDIR}$PREFIX"
}

case "$CMD" in
install) do_install ;;
uninstall) do_uninstall ;;
list)
	guard_decide
	{ files | while read -r how mode src dst; do echo "$dst"; done; echo "$MANIFEST"; } ;;
plist)
	cpu=${KOFFI_PLATFORM#freebsd-}
	{ files | while read -r how mode src dst; do echo "$dst"; done; echo "$MANIFEST"; } |
		sed -e "s|^$PREFIX/||" -e "s|koffi-freebsd-$cpu/|koffi-freebsd-%%KOFFI_ARCH%%/|" -e "s|/freebsd_$cpu/|/freebsd_%%KOFFI_ARCH%%/|" |
		LC_ALL=C sort ;;
esac
