#!/bin/sh
# Build dist/rtunnel and the .deb and .rpm from packaging/nfpm.yaml.
#
#   packaging/package.sh              build the binary, then both packages
#   RTUNNEL_SKIP_BUILD=1 packaging/package.sh
#                                     package an existing dist/rtunnel
#
# Environment: VERSION (default: git describe), ARCH (GOARCH, default amd64),
# PACKAGERS (default "deb rpm"), NFPM (an nfpm binary to use instead of Go's).
set -eu

cd "$(dirname "$0")/.."

raw=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
# shellcheck disable=SC1091 # packaging/pkgversion.sh, from the repository root
. packaging/pkgversion.sh
pkgver=$(pkg_version "$raw")
if ! printf '%s\n' "$pkgver" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "package.sh: cannot make a package version from '$raw' (got '$pkgver')" >&2
	exit 1
fi

ARCH=${ARCH:-amd64}
RTUNNEL_BINARY=dist/rtunnel
export ARCH RTUNNEL_BINARY

mkdir -p dist
if [ "${RTUNNEL_SKIP_BUILD:-0}" != 1 ]; then
	echo "building dist/rtunnel $raw for linux/$ARCH"
	CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath -tags nethttpomithttp2 \
		-ldflags "-s -w -X main.version=$raw" -o dist/rtunnel ./cmd/rtunnel
elif [ ! -x dist/rtunnel ]; then
	echo "package.sh: RTUNNEL_SKIP_BUILD=1 but dist/rtunnel is missing or not executable" >&2
	exit 1
fi

# nfpm: an explicit binary, else the version pinned in the build-tools
# module (tools/go.mod), which keeps it out of the product's go.mod.
nfpm() {
	if [ -n "${NFPM:-}" ]; then
		"$NFPM" "$@"
	else
		go tool -modfile=tools/go.mod nfpm "$@"
	fi
}

# Reproducible timestamps inside the packages.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && t=$(git log -1 --format=%ct 2>/dev/null); then
	SOURCE_DATE_EPOCH=$t
	export SOURCE_DATE_EPOCH
fi

for p in ${PACKAGERS:-deb rpm}; do
	VERSION=$pkgver nfpm package --config packaging/nfpm.yaml --packager "$p" --target dist/
done
ls -l dist/
