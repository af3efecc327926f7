# Membrane — the build, the tests, the demo and the benchmarks.
# Every entry point a new user runs (demo, test) first does what `deps` does.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CONFIG ?= Release
DOTNET ?= dotnet
BIN := $(CURDIR)/bin
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

# Debian packages the build, the tests, the demo and the benchmarks use (zlib1g-dev and clang
# also serve the NativeAOT link of membrane-cni).
DEBS := clang llvm zlib1g-dev libbpf-dev libbpf1 bpftool iproute2 iputils-ping util-linux tshark python3-scapy iperf3 procps podman runc busybox-static containernetworking-plugins sockperf iptables

.PHONY: all deps build test bench demo demo-clean clean

# The dotnet CLI leaves two empty folders in $TMPDIR every time it runs. A recipe line that runs
# it (the builds, the test runs) starts with $(WITH_TMP): a temp folder of its own, removed when
# the line ends (--one-file-system: a mount a failed test left inside is skipped, not emptied).
WITH_TMP = tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/membrane-dotnet.XXXXXX"); trap '{ set +x; } 2>/dev/null; rm -rf --one-file-system "$$tmp"' EXIT; export TMPDIR=$$tmp; set -x;

all: build

deps:
	@bash scripts/deps.sh $(DEBS)

build:
	@$(WITH_TMP) $(DOTNET) build Membrane.slnx -c $(CONFIG) -nologo -clp:NoSummary -v:q
	@mkdir -p $(BIN)
	@# NativeAOT too: a client command starts in ~15 ms instead of ~150 ms JIT-started, which is
	@# most of a `policy import` (bench/README.md); the agent runs from the same binary.
	@$(WITH_TMP) $(DOTNET) publish src/Membrane.Cli/Membrane.Cli.csproj -c $(CONFIG) -nologo -v:q -r linux-x64 -p:PublishAot=true -o $(BIN)
	@# The CNI plugin starts for every pod: NativeAOT: ~4 ms a VERSION call instead of ~46 ms JIT-started (bench/README.md).
	@$(WITH_TMP) $(DOTNET) publish src/Membrane.Cni/Membrane.Cni.csproj -c $(CONFIG) -nologo -v:q -r linux-x64 -p:PublishAot=true -o $(BIN)/.cni
	@cp $(BIN)/.cni/membrane-cni $(BIN)/membrane-cni && rm -rf $(BIN)/.cni
	@echo "built: $(BIN)/membrane $(BIN)/membrane-cni"

test: deps build
	@$(WITH_TMP) bash scripts/test.sh $(CONFIG)

bench: deps build
	@bash bench/run.sh

demo: deps build
	@bash scripts/demo.sh

demo-clean:
	@bash scripts/demo.sh --clean

clean:
	rm -rf $(BIN) src/*/bin src/*/obj tests/*/bin tests/*/obj bench/*/bin bench/*/obj
