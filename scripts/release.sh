#!/usr/bin/env bash
# Build the release: static, stripped, reproducible binaries for the machines
# remotes really are, the packages for their distributions, a tarball per
# architecture and SHA256SUMS, all in dist/release/ (RELEASE_DIR).
#
#   scripts/release.sh                  everything (make release)
#   scripts/release.sh --binaries-only  just the binaries (the cross-build test)
#   scripts/release.sh --list           the target table, one target a line
#
# Environment: RELEASE_DIR (default dist/release), RELEASE_TARGETS (names from
# the table below, default all), VERSION (default git describe), NFPM (an
# nfpm binary instead of tools/go.mod's), SOURCE_DATE_EPOCH (default the last
# commit's time: file dates inside packages and tarballs).
set -euo pipefail
# build() runs in $(...): without this a failed go build there went unnoticed.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

# name     GOARCH  variant          deb    rpm    apk      ipk (OpenWrt arch)
# The variant is GOARM or GOMIPS. Package columns hold nfpm's arch name
# (nfpm maps arm6 -> armhf for deb and apk, arm7 -> armv7hl for rpm and
# armv7 for apk), "-" for none. The deb armhf gets the ARMv6 binary: Raspberry
# Pi OS armhf is built for ARMv6 (Pi 1 and Zero) and the same binary runs on
# every ARMv7 Debian armhf board. OpenWrt archs are matched exactly by opkg;
# these are the most common ones (docs/INSTALL.md says how to add others).
TARGETS=(
	"amd64    amd64   -               amd64  amd64  amd64    x86_64"
	"arm64    arm64   -               arm64  arm64  arm64    aarch64_cortex-a53"
	"armv7    arm     GOARM=7         -      arm7   arm7     arm_cortex-a7_neon-vfpv4"
	"armv6    arm     GOARM=6         arm6   -      arm6     -"
	"386      386     -               -      -      386      -"
	"riscv64  riscv64 -               -      -      riscv64  -"
	"mips     mips    GOMIPS=softfloat -     -      -        mips_24kc"
	"mipsle   mipsle  GOMIPS=softfloat -     -      -        mipsel_24kc"
)

mode=all
case "${1:-}" in
"") ;;
--binaries-only) mode=binaries ;;
--list)
	printf '%s\n' "${TARGETS[@]}"
	exit 0
	;;
*)
	echo "usage: scripts/release.sh [--binaries-only | --list]" >&2
	exit 2
	;;
esac

out=${RELEASE_DIR:-dist/release}
case $out in
"" | / | .) echo "release.sh: RELEASE_DIR=$out would be emptied; name a directory of its own" >&2; exit 2 ;;
esac
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# shellcheck disable=SC1091 # packaging/pkgversion.sh, from the repository root
. packaging/pkgversion.sh
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
pkgver=$(pkg_version "$version")
apkver=$(apk_version "$version" "$SOURCE_DATE_EPOCH")

selected() { # selected NAME: in RELEASE_TARGETS, or all when unset
	[ -z "${RELEASE_TARGETS:-}" ] && return 0
	case " $RELEASE_TARGETS " in *" $1 "*) return 0 ;; esac
	return 1
}
for want in ${RELEASE_TARGETS:-}; do
	if ! printf '%s\n' "${TARGETS[@]}" | grep -q "^$want "; then
		echo "release.sh: RELEASE_TARGETS names $want, which is not a target; scripts/release.sh --list shows them" >&2
		exit 2
	fi
done

nfpm() {
	if [ -n "${NFPM:-}" ]; then
		"$NFPM" "$@"
	else
		go tool -modfile=tools/go.mod nfpm "$@"
	fi
}

# Start from nothing so SHA256SUMS lists exactly this build.
rm -rf "$out"
mkdir -p "$out"

# -trimpath drops this checkout's path; -buildvcs=false keeps go's own VCS
# stamping (absent in git worktrees, present in clones) from making two
# checkouts of one commit differ: the commit is passed explicitly instead.
# -buildid= is left to go: it is derived from the inputs, so it is stable.
ldflags="-s -w -X main.version=$version -X main.commit=$commit"
# net/http without its bundled HTTP/2: the metrics endpoint and `rtunnel
# status` speak HTTP/1.1 on loopback, never TLS, so h2 is dead weight (0.59 MB
# of the arm64 binary; docs/PERFORMANCE.md).
tags=nethttpomithttp2

build() { # build NAME GOARCH VARIANT -> path of the binary
	local name=$1 goarch=$2 variant=$3 bin="$out/rtunnel-$version-linux-$1"
	local env=(CGO_ENABLED=0 GOOS=linux GOARCH="$goarch")
	[ "$variant" != - ] && env+=("$variant")
	echo "build  linux/$name (${env[*]})" >&2
	env "${env[@]}" go build -trimpath -buildvcs=false -tags "$tags" -ldflags "$ldflags" -o "$bin" ./cmd/rtunnel || return 1
	printf '%s\n' "$bin"
}

package() { # package CONFIG PACKAGER ARCH BINARY
	local v=$pkgver
	[ "$2" = apk ] && v=$apkver
	VERSION=$v ARCH=$3 RTUNNEL_BINARY=$4 \
		nfpm package --config "$1" --packager "$2" --target "$out/" >/dev/null
	echo "pack   $2 ($3)" >&2
}

tarball() { # tarball NAME BINARY: binary, service files, example config, docs
	local name=$1 bin=$2 dir="rtunnel-$version-linux-$1"
	local stage
	stage=$(mktemp -d)
	mkdir -p "$stage/$dir/systemd" "$stage/$dir/openrc" "$stage/$dir/procd" "$stage/$dir/docs" "$stage/$dir/hub"
	install -m 0755 "$bin" "$stage/$dir/rtunnel"
	install -m 0644 packaging/systemd/rtunnel.service packaging/systemd/rtunnel@.service \
		packaging/sysusers.d/rtunnel.conf "$stage/$dir/systemd/"
	install -m 0644 packaging/tmpfiles.d/rtunnel.conf "$stage/$dir/systemd/rtunnel-tmpfiles.conf"
	install -m 0755 packaging/openrc/rtunnel "$stage/$dir/openrc/rtunnel"
	install -m 0755 packaging/procd/rtunnel "$stage/$dir/procd/rtunnel"
	install -m 0644 packaging/rtunnel.example.yaml "$stage/$dir/rtunnel.example.yaml"
	install -m 0644 README.md "$stage/$dir/README.md"
	install -m 0644 docs/INSTALL.md docs/CONFIG.md docs/TOPOLOGIES.md "$stage/$dir/docs/"
	install -m 0644 deploy/hub/HUB.md deploy/hub/sshd_config.d/rtunnel-hub.conf "$stage/$dir/hub/"
	# Same bytes from the same commit: fixed order, owner and dates, and no
	# name or date in the gzip header.
	tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$SOURCE_DATE_EPOCH" --format=gnu -cf - "$dir" |
		gzip -n -9 >"$out/$dir.tar.gz"
	rm -rf "$stage"
	echo "tar    $dir.tar.gz" >&2
}

for row in "${TARGETS[@]}"; do
	read -r name goarch variant deb rpm apk ipk <<<"$row"
	selected "$name" || continue
	bin=$(build "$name" "$goarch" "$variant")
	[ "$mode" = binaries ] && continue
	[ "$deb" != - ] && package packaging/nfpm.yaml deb "$deb" "$bin"
	[ "$rpm" != - ] && package packaging/nfpm.yaml rpm "$rpm" "$bin"
	[ "$apk" != - ] && package packaging/nfpm-apk.yaml apk "$apk" "$bin"
	[ "$ipk" != - ] && package packaging/nfpm-ipk.yaml ipk "$ipk" "$bin"
	tarball "$name" "$bin"
done

files=$(cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort)
# shellcheck disable=SC2086 # file names are ours: no spaces
(cd "$out" && sha256sum $files >SHA256SUMS)
echo "release $version ($pkgver) in $out:" >&2
(cd "$out" && find . -maxdepth 1 -type f -printf '%10s %f\n' | LC_ALL=C sort -k2) >&2
