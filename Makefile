# rtunnel's front door. `make demo` and `make test` work as root on a fresh
# Debian 12 machine: they install what they need.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The whole suite stays well under CI's limit; the long soak is `make soak`.
TEST_TIMEOUT ?= 14m

.PHONY: all build deps test lint demo bench bench-smoke fleet soak fuzz package systemd-test release release-test clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags nethttpomithttp2 -ldflags "$(LDFLAGS)" -o bin/rtunnel ./cmd/rtunnel

deps:
	@bash scripts/install-deps.sh

test:
	@bash scripts/install-deps.sh --test
	$(GO) vet ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s >/dev/null && echo "fuzz: 4 targets x 5s: no failures"
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# The platforms the package is built for; a build for each catches code
# that compiles only on the developer's (e.g. syscall numbers, 64-bit sizes).
CROSS ?= linux/amd64 linux/arm64 linux/arm linux/386 linux/riscv64

# Build tools live in their own module (tools/go.mod), so the product's
# module graph holds only what the binary uses.
TOOL := $(GO) tool -modfile=tools/go.mod

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOL) staticcheck ./...
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff
	@for p in $(CROSS); do \
		echo "build $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./... || exit 1; \
	done

demo: deps build
	@bash scripts/demo.sh bin/rtunnel

bench:
	@bash scripts/install-deps.sh --bench
	RTUNNEL_BENCH=1 $(GO) test -run 'TestBench$$' -v -count=1 -timeout 60m ./bench/

# N remotes, one process each, against one stock sshd in a network namespace:
# cold start, hub reboot, idle cost (docs/FLEET.md). CLIENT=autossh measures
# `autossh -M 0` instead; MAXSTARTUPS=100:30:1000 the hub snippet's setting.
# Writes bench/results/fleet-*.json.
N           ?= 100
CLIENT      ?= rtunnel
MAXSTARTUPS ?= 10:30:100
SILENT      ?= false
fleet:
	@bash scripts/install-deps.sh --fleet
	RTUNNEL_FLEET=1 $(GO) test -run 'TestFleet$$' -v -count=1 -timeout 90m ./fleet/ -args -n=$(N) -client=$(CLIENT) -maxstartups=$(MAXSTARTUPS) -silent=$(SILENT)

# Twice: with the race detector (goroutines, fds, threads, races), then
# without it (RSS: the race runtime's own memory grows with every goroutine).
soak: deps
	RTUNNEL_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run Soak ./e2e/...
	RTUNNEL_SOAK=1 $(GO) test -count=1 -timeout 60m -run Soak ./e2e/...

# Each fuzz target for FUZZTIME; `make test` runs them briefly (CI), and
# `make fuzz FUZZTIME=10m` for real.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzParseAddr$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzParseEndpoint$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzKnownHosts$$' -fuzztime $(FUZZTIME) ./tunnel/

package:
	bash packaging/package.sh

# The installed .deb under systemd 252 as PID 1: a Debian 12 container booted
# with systemd-nspawn (root only). The container root is built once with
# debootstrap and cached in /var/cache/rtunnel; see packaging/README.md.
SYSTEMD_TEST_TRANSCRIPT ?= $(CURDIR)/dist/systemd-test.transcript
systemd-test:
	@bash scripts/install-deps.sh --systemd
	@mkdir -p $(dir $(SYSTEMD_TEST_TRANSCRIPT))
	RTUNNEL_SYSTEMD_TEST=1 RTUNNEL_SYSTEMD_TRANSCRIPT=$(SYSTEMD_TEST_TRANSCRIPT) \
		$(GO) test -count=1 -v -timeout 20m -run '^TestSystemd$$' ./packaging/systemdtest/

# Static stripped reproducible binaries for eight linux targets, .deb/.rpm/
# .apk/.ipk, a tarball per target and SHA256SUMS in dist/release/.
release:
	bash scripts/release.sh

# What takes minutes: the release built, its packages inspected, rebuilt
# from a fresh cache to compare bytes, and the arm64/armv7/mipsle binaries
# run under qemu-user (version, check, the Direct-topology smoke).
release-test:
	@bash scripts/install-deps.sh --release
	bash scripts/release.sh
	RTUNNEL_RELEASE_DIR=$(CURDIR)/dist/release $(GO) test -count=1 -timeout 15m -run '^TestRelease' -v ./packaging/

clean:
	rm -rf bin dist
