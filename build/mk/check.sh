#!/bin/sh
# make check, beyond tsc: `sh -n` (or `bash -n`) over every shell script in
# the tree, found by its #! line or a .sh name, and `mandoc -Tlint` over the
# man pages when mandoc is installed. Exit status 1 on any finding.
#
#   sh build/mk/check.sh [DIR]    (default: the top of the tree)
set -eu
cd "${1:-$(dirname "$0")/../..}"

fail=0
n=0
for f in $(find . \( -name node_modules -o -name .git -o -name dist -o -name bundle -o -name .koffi-cache \) -prune -o -type f -print | LC_ALL=C sort); do
	first=$(head -n 1 "$f" 2>/dev/null | tr -d '\r') || continue
	case "$first" in
	'#!/bin/sh'* | '#! /bin/sh'* | '#!/usr/bin/env sh'*) shell=sh ;;
	'#!/bin/bash'* | '#!/usr/bin/env bash'*) shell=bash ;;
	*)
		case "$f" in
		*.sh) shell=sh ;;
		*) continue ;;
		esac ;;
	esac
	n=$((n + 1))
	if ! "$shell" -n "$f"; then
		echo "check: $shell -n $f failed" >&2
		fail=1
	fi
done
echo "check: $n shell scripts parsed"

if command -v mandoc >/dev/null 2>&1; then
	m=0
	for f in build/man/*.[1-9]; do
		[ -f "$f" ] || continue
		m=$((m + 1))
		# Warnings and worse fail; STYLE hints (e.g. cross references to
		# pages this machine lacks) do not.
		if ! mandoc -Tlint -Wwarning "$f"; then
			echo "check: mandoc -Tlint $f has warnings" >&2
			fail=1
		fi
	done
	echo "check: $m man pages linted"
else
	echo "check: mandoc not installed; man pages not linted"
fi
exit $fail
