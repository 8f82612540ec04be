# hvguest: works under FreeBSD make (bmake) and GNU make; keep it POSIX.
# Logic the two makes disagree on belongs in a script under build/.

NPM?=	npm

all: node_modules
	${NPM} run build

node_modules: package.json
	${NPM} install --no-audit --no-fund
	touch node_modules

test: node_modules
	${NPM} test

demo: node_modules
	${NPM} run demo

check: node_modules
	${NPM} run typecheck

clean:
	rm -rf dist .vitest-results.json

.PHONY: all test demo check clean
