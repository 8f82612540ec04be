#!/bin/sh
# The WITHOUT_HYPERV knob and architecture gating, shared by every make
# target that builds or installs Hyper-V components (the two makes disagree
# on conditionals, so the decision lives here, in POSIX sh).
#
# Inputs (environment, passed through by the Makefile; empty = unset):
#   WITHOUT_HYPERV  any non-empty value: build and install nothing
#   MK_HYPERV       "no": same as WITHOUT_HYPERV (FreeBSD src.conf spelling)
#   WITH_HYPERV     any non-empty value except no/false/0: build even on an
#                   architecture where the default is off
#   MACHINE_ARCH    target architecture; empty = `uname -m`. Both FreeBSD
#                   names (amd64, i386, aarch64) and uname names (x86_64,
#                   i686, arm64) are accepted. bmake always defines it
#                   (FreeBSD: amd64, i386, aarch64; Debian's bmake on
#                   x86_64: amd64), GNU make never does; a command-line
#                   value wins in both.
#
# Used two ways:
#   . build/mk/hyperv.sh; hv_gate || exit 0   (from the other build scripts)
#   sh build/mk/hyperv.sh status              (one line, always exit 0)
#   sh build/mk/hyperv.sh arch                (the normalized architecture)

# FreeBSD's name for an architecture given as MACHINE_ARCH or by uname -m.
hv_arch_name() {
	case "$1" in
	x86_64 | amd64) echo amd64 ;;
	i386 | i486 | i586 | i686 | x86) echo i386 ;;
	arm64 | aarch64) echo aarch64 ;;
	*) echo "$1" ;;
	esac
}

# The target architecture (FreeBSD name).
hv_arch() {
	_a=${MACHINE_ARCH:-}
	[ -n "$_a" ] || _a=$(uname -m)
	hv_arch_name "$_a"
}

# Sets HV_ENABLED (yes/no) and HV_LINE (what to tell the user); returns 2
# with a message on stderr for a value that cannot be meant.
hv_decide() {
	HV_ARCH=$(hv_arch)
	case "${WITH_HYPERV:-}" in
	[Nn][Oo] | [Ff][Aa][Ll][Ss][Ee] | 0)
		echo "hvguest: WITH_HYPERV=${WITH_HYPERV} is ambiguous: unset it, or set WITHOUT_HYPERV=yes to build nothing" >&2
		return 2 ;;
	esac
	if [ -n "${WITHOUT_HYPERV:-}" ]; then
		HV_ENABLED=no
		HV_LINE="hvguest: WITHOUT_HYPERV is set: building and installing nothing Hyper-V-related"
	elif [ "${MK_HYPERV:-}" = no ]; then
		HV_ENABLED=no
		HV_LINE="hvguest: MK_HYPERV=no: building and installing nothing Hyper-V-related"
	elif [ -n "${WITH_HYPERV:-}" ]; then
		HV_ENABLED=yes
		case "$HV_ARCH" in
		amd64 | i386) HV_LINE="hvguest: Hyper-V components enabled for $HV_ARCH" ;;
		*) HV_LINE="hvguest: Hyper-V components forced on for $HV_ARCH by WITH_HYPERV" ;;
		esac
	else
		case "$HV_ARCH" in
		amd64 | i386)
			HV_ENABLED=yes
			HV_LINE="hvguest: Hyper-V components enabled for $HV_ARCH" ;;
		*)
			HV_ENABLED=no
			HV_LINE="hvguest: skipping Hyper-V components on $HV_ARCH (on by default only for amd64 and i386; set WITH_HYPERV=yes to build them, e.g. for aarch64 guests)" ;;
		esac
	fi
	return 0
}

# Returns 0 when Hyper-V components are to be built/installed; otherwise
# prints the one line saying why not and returns 1 (2 on a bad value).
hv_gate() {
	hv_decide || return 2
	if [ "$HV_ENABLED" = no ]; then
		echo "$HV_LINE"
		return 1
	fi
	return 0
}

case "${0##*/}" in
hyperv.sh)
	set -eu
	case "${1:-status}" in
	status)
		hv_decide || exit 2
		echo "$HV_LINE" ;;
	arch) hv_arch ;;
	*)
		echo "usage: hyperv.sh [status|arch]" >&2
		exit 64 ;;
	esac ;;
esac
