# kubectl-trace. `make` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

MODULE    := github.com/ktrace-dev/kubectl-trace
VERSION   ?= dev
# The image `make image` builds and the local cluster runs; released builds
# point at the published image instead (see .goreleaser.yaml).
TRACER_IMAGE ?= ktrace.local/tracer:$(VERSION)
GO        ?= go
export GOTOOLCHAIN := local
export PATH := /usr/local/go/bin:$(PATH)

LDFLAGS := -s -w -X $(MODULE)/plugin.version=$(VERSION) -X $(MODULE)/plugin.defaultImage=$(TRACER_IMAGE)
TRACER_LDFLAGS := -s -w -X main.version=$(VERSION)
KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig
E2E_ENV := KUBECONFIG=$(KUBECONFIG_LOCAL) PATH=$(CURDIR)/bin:$(CURDIR)/.cluster/bin:$$PATH

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/kubectl-trace, its completion shim bin/kubectl_complete-trace, and bin/tracer (static)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "$(LDFLAGS) -buildid=" -o bin/kubectl-trace ./cmd/kubectl-trace
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "$(TRACER_LDFLAGS) -buildid=" -o bin/tracer ./cmd/tracer
	install -m 0755 krew/kubectl_complete-trace bin/kubectl_complete-trace

.PHONY: image
image: build ## build the tracer, pause and workload image tarballs into bin/images
	$(GO) run ./hack/images -out bin/images -tracer bin/tracer -tag $(TRACER_IMAGE)

.PHONY: image-tar
image-tar: image ## the tracer image as a tarball for air-gapped clusters: make image-tar TRACER_IMAGE=registry.internal/kubectl-trace-tracer:v0.1.0
	@echo "bin/images/tracer.tar holds $(TRACER_IMAGE): push it with 'go run github.com/google/go-containerregistry/cmd/crane push bin/images/tracer.tar $(TRACER_IMAGE)' (docs/install.md)"

.PHONY: cluster-up
cluster-up: image ## start the local single-node cluster (idempotent); kubeconfig in .cluster/kubeconfig
	hack/cluster/up.sh

.PHONY: cluster-load
cluster-load: ## import an image tarball into the local cluster: make cluster-load IMAGE=path/to/image.tar
	@test -n "$(IMAGE)" || { echo "usage: make cluster-load IMAGE=path/to/image.tar" >&2; exit 2; }
	hack/cluster/load.sh $(IMAGE)

.PHONY: cluster-down
cluster-down: ## stop the local cluster and remove its state, mounts and cgroups
	hack/cluster/down.sh

.PHONY: cluster-add-node
cluster-add-node: cluster-up ## add a node (own network/PID/mount/UTS namespaces): make cluster-add-node [NODE=ktrace-node3]
	hack/cluster/add-node.sh $(NODE)

.PHONY: cluster-remove-node
cluster-remove-node: ## remove an extra node and all it left: make cluster-remove-node [NODE=ktrace-node3 | NODE=--all]
	hack/cluster/remove-node.sh $(NODE)

.PHONY: demo
demo: cluster-up ## cluster up, a demo workload, and a real 5 s sched trace of it
	hack/demo.sh

.PHONY: test
test: verify test-unit test-otelcol test-privileged e2e release-check ## all tests: verify, unit, export to the real collector, privileged (root), end to end, and the release checks

.PHONY: release-check
release-check: ## goreleaser check and snapshot build of the six archives, then the krew manifest installed as krew does
	$(MAKE) dist validate-krew

.PHONY: test-unit
test-unit: ## unit tests, no root needed
	$(GO) test -count=1 ./...

.PHONY: otelcol
otelcol: ## build the project's OpenTelemetry Collector into bin/tools/otelcol (collector builder; cached in ~/.cache/kubectl-trace)
	hack/otelcol/build.sh bin/tools/otelcol

.PHONY: test-otelcol
test-otelcol: otelcol ## OTLP export tests against the real collector on loopback (plugin/otlp, grpc and http/protobuf)
	KTRACE_OTELCOL=$(CURDIR)/bin/tools/otelcol $(GO) test -count=1 -tags otelcol ./plugin/otlp/

.PHONY: test-privileged
test-privileged: ## kernel tests: root and a real kernel (one package at a time: they check kernel-wide state, such as BPF programs and tracefs instances)
	@[ "$$(id -u)" = 0 ] || { echo "test-privileged needs root (real tracefs, cgroups and namespaces)" >&2; exit 1; }
	@mkdir -p bin
	$(GO) test -count=1 -p 1 -tags privileged -v ./hooks/... ./tracer-image/... 2>&1 | tee bin/test-privileged.log | grep -E '^\s*(--- |PASS|FAIL|ok|panic)|^\s+\S+_test\.go:[0-9]+: ' ; exit $${PIPESTATUS[0]}

.PHONY: e2e
e2e: build cluster-up ## end-to-end tests against the local cluster
	@mkdir -p bin
	$(E2E_ENV) $(GO) test -count=1 -tags e2e -timeout 40m -v ./test/e2e/ 2>&1 | tee bin/e2e.log | grep -E '^\s*(--- |PASS|FAIL|ok|panic)|^\s+\S+_test\.go:[0-9]+: ' ; exit $${PIPESTATUS[0]}

.PHONY: bench
bench: $(if $(filter overhead,$(BENCH)),build,cluster-up) ## benchmarks against baselines run side by side (root, local cluster, ~7 min): make bench [BENCH=overhead|throughput|firstevent] [BENCH_FLAGS=-quick]
	@[ "$$(id -u)" = 0 ] || { echo "bench needs root (cgroups, namespaces, BPF, tracefs)" >&2; exit 1; }
	@command -v bpftrace >/dev/null && command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bpftrace strace >/dev/null; }
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -o bin/ktbench ./bench
	$(E2E_ENV) bin/ktbench -tracer bin/tracer -out bin/bench.md $(BENCH_FLAGS) $(or $(BENCH),all)

.PHONY: verify
verify: ## gofmt, go vet, go.mod/go.sum tidy, generated docs and bpf2go output up to date
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); [ -z "$$out" ] || { echo "gofmt needed: $$out" >&2; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags privileged ./hooks/... ./tracer-image/...
	$(GO) vet -tags e2e ./test/e2e/
	$(GO) vet -tags otelcol ./plugin/otlp/
	$(GO) vet -tags release ./krew/
	$(GO) mod tidy -diff
	@gen="hooks/ebpf/*/*_bpfel.* hooks/ebpf/syscalltop/syscallnames.go tracer-image/pidns/*_bpfel.*" && \
	  before=$$(cat $$gen | sha256sum) && $(GO) generate ./hooks/ebpf/... ./tracer-image/pidns/ && \
	  after=$$(cat $$gen | sha256sum) && \
	  [ "$$before" = "$$after" ] || { echo "the bpf2go output was stale (now regenerated): commit it" >&2; exit 1; }
	@tmp=$$(mktemp -d) && cp -r docs $$tmp/ && $(GO) run ./hack/docgen -out $$tmp/docs && \
	  { diff -r docs $$tmp/docs >/dev/null || { diff -ru docs $$tmp/docs | head -40; echo "generated docs are stale: run 'make docs'" >&2; rm -rf $$tmp; exit 1; }; } && rm -rf $$tmp

.PHONY: generate
generate: ## regenerate the committed bpf2go output (hooks/ebpf/*/, tracer-image/pidns; needs clang-14, llvm-14, libbpf-dev)
	$(GO) generate ./hooks/ebpf/... ./tracer-image/pidns/

.PHONY: docs
docs: ## regenerate docs/hooks.md and docs/reference/ from the code
	$(GO) run ./hack/docgen -out docs

include hack/release.mk

.PHONY: clean
clean: ## remove build output and dist/ (not the cluster: see cluster-down)
	rm -rf bin dist
