#!/usr/bin/env bash
# Where the bytes of rtunnel's binary go: text and read-only data by package
# group, from `go tool nm -size -sort size` of an unstripped build (the
# symbol table is what -s removes). The function tables (pclntab) and type
# data grow with the code, so a group's share of the stripped binary is
# about twice its figure here.
#
#   scripts/binsize.sh [GOARCH [variant]]     default arm64, e.g. arm GOARM=7
set -euo pipefail
cd "$(dirname "$0")/.."
goarch=${1:-arm64}
variant=${2:-}
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
env CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" ${variant:+"$variant"} \
	go build -trimpath -tags nethttpomithttp2 -o "$bin" ./cmd/rtunnel
go tool nm -size -sort size "$bin" | awk '
# Package of a symbol: up to the first "." after the last "/".
function pkgof(name,   i, slash, rest, dot) {
	slash = 0
	for (i = length(name); i > 0; i--) if (substr(name, i, 1) == "/") { slash = i; break }
	rest = substr(name, slash + 1)
	dot = index(rest, ".")
	return dot > 0 ? substr(name, 1, slash + dot - 1) : name
}
function group(p) {
	if (p ~ /^net\/http/ || p ~ /^vendor\/golang\.org\/x\/net\/http/ || p ~ /^(mime|mime\/.*|net\/textproto|expvar)$/) return "net/http, textproto, mime"
	if (p ~ /^crypto\/(tls|x509)/) return "crypto/tls, crypto/x509"
	if (p ~ /^golang\.org\/x\/crypto\//) return "golang.org/x/crypto"
	if (p ~ /^crypto\// || p ~ /^vendor\/golang\.org\/x\/crypto\//) return "crypto/* (std)"
	if (p ~ /^github\.com\/spf13\// || p ~ /^text\/template/) return "cobra, pflag, text/template"
	if (p ~ /^go\.yaml\.in\//) return "yaml"
	if (p ~ /^github\.com\/rtunnel\// || p == "main") return "rtunnel (own packages)"
	if (p ~ /^runtime/ || p ~ /^internal\// || p ~ /^go:/ || p ~ /^type:/) return "runtime, internal, type data"
	if (p ~ /^(net|syscall|os|os\/.*|golang\.org\/x\/sys\/.*|internal\/poll)$/) return "net, os, syscall"
	return "rest of std (fmt, reflect, encoding/*, slog, ...)"
}
$3 ~ /^[TtRr]$/ {
	name = $4
	for (i = 5; i <= NF; i++) name = name " " $i
	g = group(pkgof(name))
	sum[g] += $2
	total += $2
}
END {
	for (g in sum) printf "%8.2f MB  %s\n", sum[g] / 1e6, g
	printf "%8.2f MB  TOTAL text+rodata\n", total / 1e6
}' | sort -rn
