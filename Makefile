# hvguest: works unchanged under FreeBSD make (bmake) and GNU make; keep it
# POSIX. Logic the two makes disagree on lives in build/mk/*.sh.
#
#   make [all]       compile and bundle the programs (needs npm)
#   make install     install for LAYOUT (freebsd|linux, default from uname -s)
#                    under PREFIX (/usr/local or /usr), DESTDIR honoured
#   make uninstall   remove exactly what install put
#   make test | demo | check | clean | port-tarball | hyperv-status
#
# Knobs: WITHOUT_HYPERV=yes (or MK_HYPERV=no) builds and installs nothing;
# Hyper-V components are on by default for amd64 and i386 only,
# WITH_HYPERV=yes forces them on elsewhere (e.g. aarch64 guests).
# MACHINE_ARCH=... overrides the detected architecture.

NPM?=	npm

# bmake runs recipes in .OBJDIR, which is not the source directory when
# MAKEOBJDIRPREFIX is set or an obj/ (or /usr/obj/SRCDIR) directory exists,
# as on many FreeBSD machines; the recipes use paths relative to this
# directory, so stay here. For GNU make this is a rule for a target nobody
# asks for (and ${.CURDIR} is empty).
.OBJDIR: ${.CURDIR}

# Everything the scripts read, passed explicitly (neither make exports its
# command-line variables to recipes in the same way).
HVENV=	WITHOUT_HYPERV="${WITHOUT_HYPERV}" WITH_HYPERV="${WITH_HYPERV}" \
	MK_HYPERV="${MK_HYPERV}" MACHINE_ARCH="${MACHINE_ARCH}" \
	LAYOUT="${LAYOUT}" PREFIX="${PREFIX}" DESTDIR="${DESTDIR}" \
	NODEBIN="${NODEBIN}" MANDIR="${MANDIR}" \
	SYSTEMDUNITDIR="${SYSTEMDUNITDIR}" UDEVRULESDIR="${UDEVRULESDIR}" \
	KOFFI_PLATFORM="${KOFFI_PLATFORM}" KOFFI_PLATFORMS="${KOFFI_PLATFORMS}" \
	INSTALL_RCD="${INSTALL_RCD}" BUNDLE="${BUNDLE}" DISTINFO="${DISTINFO}" \
	NPM="${NPM}" CC="${CC}" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"

all:
	@${HVENV} sh build/mk/build.sh

node_modules: package.json
	${NPM} install --no-audit --no-fund
	touch node_modules

install:
	@${HVENV} sh build/mk/install.sh install

uninstall:
	@${HVENV} sh build/mk/install.sh uninstall

hyperv-status:
	@${HVENV} sh build/mk/hyperv.sh status

test: node_modules
	${NPM} test

demo: node_modules
	${NPM} run demo

check: node_modules
	${NPM} run typecheck
	@sh build/mk/check.sh

port-tarball: node_modules
	@${HVENV} sh build/mk/port-tarball.sh

clean:
	rm -rf dist bundle .vitest-results.json

.PHONY: all install uninstall hyperv-status test demo check port-tarball clean
