#!/bin/sh
# quickstart.sh: the two commands of README.md's quick start.
#
#   ./quickstart.sh run    install the build dependencies (Debian 12 and
#                          derivatives), build, and run dqd on its built-in
#                          defaults (127.0.0.1:6379, data in ./dqd-data)
#   ./quickstart.sh test   the same set-up, then the whole test suite
#
# CONFIGURE_FLAGS is passed to ./configure (e.g. --enable-sanitizers).
set -eu
cd "$(dirname "$0")"

# What building needs, then what the tests drive dqd with (redis-cli,
# redis-py, promtool from the prometheus package, systemd-analyze).
BUILD_PKGS="build-essential autoconf automake libtool pkg-config \
libdb5.3-dev libconfig-dev libhiredis-dev libcriterion-dev"
TEST_PKGS="redis-tools python3 python3-redis python3-prometheus-client procps mandoc curl prometheus logrotate \
systemd"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_deps() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "quickstart: installing$missing"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $missing
}

build() {
	[ -x configure ] || autoreconf -fi
	[ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
	make -j"$(nproc)"
}

case "${1:-}" in
run)
	install_deps $BUILD_PKGS
	build
	exec ./dqd
	;;
test)
	install_deps $BUILD_PKGS $TEST_PKGS
	build
	make -j"$(nproc)" check
	;;
*)
	echo "usage: $0 run | test" >&2
	exit 2
	;;
esac
