# Install layout, sourced by the build scripts (POSIX sh). Inputs from the
# environment (the Makefile passes its variables; empty = default):
#   LAYOUT     freebsd | linux (default: from uname -s)
#   PREFIX     default /usr/local (freebsd) or /usr (linux)
#   NODEBIN    the node the launchers' #! names (default /usr/local/bin/node
#              on FreeBSD, /usr/bin/node on Linux)
#   MANDIR, SYSTEMDUNITDIR, UDEVRULESDIR   override those directories
#   KOFFI_PLATFORM   koffi native package to install (default: the layout's
#                    OS and the target architecture, e.g. freebsd-x64)
# Sets the *DIR variables below and KOFFI_PLATFORM; returns 2 with a
# message on bad input.

# koffi's CPU name for a FreeBSD architecture name.
hv_koffi_cpu() {
	case "$1" in
	amd64) echo x64 ;;
	i386) echo ia32 ;;
	aarch64) echo arm64 ;;
	*) echo "$1" ;;
	esac
}

hv_layout() {
	if [ -z "${LAYOUT:-}" ]; then
		case "$(uname -s)" in
		FreeBSD) LAYOUT=freebsd ;;
		Linux) LAYOUT=linux ;;
		*)
			echo "hvguest: no install layout for $(uname -s): set LAYOUT=freebsd or LAYOUT=linux" >&2
			return 2 ;;
		esac
	fi
	case "$LAYOUT" in
	freebsd)
		PREFIX=${PREFIX:-/usr/local}
		NODEBIN=${NODEBIN:-/usr/local/bin/node}
		# Ports install man pages under share/man since 2024 (the move
		# from PREFIX/man); MANDIR=$PREFIX/man for older trees.
		MANDIR=${MANDIR:-$PREFIX/share/man}
		HELPERDIR=$PREFIX/libexec/hyperv
		RCDIR=$PREFIX/etc/rc.d
		DEVDDIR=$PREFIX/etc/devd ;;
	linux)
		PREFIX=${PREFIX:-/usr}
		NODEBIN=${NODEBIN:-/usr/bin/node}
		MANDIR=${MANDIR:-$PREFIX/share/man}
		HELPERDIR=$PREFIX/libexec/hypervkvpd
		SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-$PREFIX/lib/systemd/system}
		UDEVRULESDIR=${UDEVRULESDIR:-$PREFIX/lib/udev/rules.d} ;;
	*)
		echo "hvguest: LAYOUT=$LAYOUT: expected freebsd or linux" >&2
		return 2 ;;
	esac
	# PREFIX ends up in sed expressions (where & | \ mean something), all
	# of the directories in the install list (one path a word), NODEBIN in
	# a #! line: absolute paths of plain path characters only. DESTDIR is
	# only ever quoted, so it may contain anything but a newline.
	for _v in PREFIX NODEBIN MANDIR SYSTEMDUNITDIR UDEVRULESDIR; do
		eval "_p=\${$_v:-}"
		[ -n "$_p" ] || [ "$_v" = PREFIX ] || [ "$_v" = NODEBIN ] || continue
		case "$_p" in
		*[!A-Za-z0-9/._+@:,-]*)
			echo "hvguest: $_v=$_p: only letters, digits and / . _ + @ : , - are allowed" >&2
			return 2 ;;
		/*) ;;
		*)
			echo "hvguest: $_v=$_p: must be an absolute path" >&2
			return 2 ;;
		esac
	done
	BINDIR=$PREFIX/bin
	SBINDIR=$PREFIX/sbin
	# The bundles and koffi; launchers find it as ../lib/hvguest.
	LIBDIR=$PREFIX/lib/hvguest
	KOFFI_PLATFORM=${KOFFI_PLATFORM:-$LAYOUT-$(hv_koffi_cpu "$(hv_arch)")}
	return 0
}
