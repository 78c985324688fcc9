#!/bin/sh
# Sourced by packaging/package.sh and scripts/release.sh: pkg_version maps
# what `git describe` prints to a package version.
#
# The binary reports the version as git describes it; packages need one that
# starts with a digit and sorts right in dpkg and rpm:
#   v1.2.3                 -> 1.2.3
#   v1.2.3-4-gabc1234      -> 1.2.3+git4.abc1234   (after 1.2.3)
#   v1.3.0-rc1             -> 1.3.0~rc1            (before 1.3.0)
#   abc1234 (no tag)       -> 0.0.0~gitabc1234
#   0.0.0-dev (no git)     -> 0.0.0~dev
#   dev (any other word)   -> 0.0.0~dev
#   any of them + -dirty   -> ...+dirty (or .dirty after a '+')
pkg_version() {
	v=${1#v}
	dirty=
	case $v in *-dirty) v=${v%-dirty} dirty=1 ;; esac
	if printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
		v=0.0.0~git$v # no tag: describe gave the bare commit hash
	else
		case $v in
		[0-9]*) v=$(printf '%s\n' "$v" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g') ;;
		*) v=0.0.0~$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.') ;;
		esac
	fi
	if [ -n "$dirty" ]; then
		case $v in *+*) v=$v.dirty ;; *) v=$v+dirty ;; esac
	fi
	printf '%s\n' "$v"
}

# apk_version DESCRIBE EPOCH maps the same input to Alpine's version syntax,
# which has no '~' or '+': digits and dots, then _rcN / _pN suffixes (apk
# sorts _rc before the release and _p after it). An untagged build becomes
# 0.0.0_git<commit date>, a -dirty tree drops the mark (the binary keeps it).
#   v1.2.3                 -> 1.2.3
#   v1.2.3-4-gabc1234      -> 1.2.3_p4
#   v1.3.0-rc1             -> 1.3.0_rc1 (also alpha, beta, pre)
#   v1.3.0-rc1-2-gabc1234  -> 1.3.0_rc1_p2
#   abc1234, dev, ...      -> 0.0.0_git20261206140000 (EPOCH, UTC)
apk_version() {
	v=${1#v}
	v=${v%-dirty}
	case $v in
	[0-9]*.*) ;;
	*)
		printf '0.0.0_git%s\n' "$(date -u -d "@$2" +%Y%m%d%H%M%S)"
		return
		;;
	esac
	printf '%s\n' "$v" | sed -E 's/-([0-9]+)-g[0-9a-f]+$/_p\1/; s/-(alpha|beta|pre|rc)\.?([0-9]*)/_\1\2/'
}
