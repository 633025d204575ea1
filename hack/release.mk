# Release targets (goreleaser, krew). Included by the Makefile.
#
# goreleaser is built from the Go module proxy at a pinned version into
# bin/tools (v2.15.0 builds with Go 1.26; v2.18 needs a newer Go).

GORELEASER_VERSION ?= v2.15.0
TOOLS_BIN  := $(CURDIR)/bin/tools
GORELEASER := $(TOOLS_BIN)/goreleaser

.PHONY: goreleaser
goreleaser: ## install goreleaser at GORELEASER_VERSION into bin/tools from the Go module proxy (skipped when there)
	@if [ -x "$(GORELEASER)" ] && $(GO) version -m "$(GORELEASER)" 2>/dev/null \
	    | grep -Eq '^\s+mod\s+github.com/goreleaser/goreleaser/v2\s+$(GORELEASER_VERSION)(\s|$$)'; then \
	  echo "goreleaser $(GORELEASER_VERSION) already in bin/tools"; \
	else \
	  echo "installing goreleaser $(GORELEASER_VERSION) into bin/tools (a few minutes cold)"; \
	  GOBIN="$(TOOLS_BIN)" $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION); \
	fi

# dist/ is goreleaser's output: six archives (tar.gz for linux and darwin,
# zip for windows; amd64 and arm64), checksums.txt, metadata.json and
# artifacts.json. A snapshot is versioned v<next patch>-snapshot-<commit>.
.PHONY: dist
dist: goreleaser ## snapshot release archives and checksums in dist/ (goreleaser, nothing published)
	$(GORELEASER) check
	$(GIT_REMOTE_ENV) $(GORELEASER) release --snapshot --clean --skip=publish

# goreleaser reads the commit only if `git ls-remote --get-url` works: in a
# checkout without a remote a snapshot would silently be commit "none", dated
# year 1. Such a checkout gets the project's URL from the environment for
# these commands; .git/config is not touched.
PROJECT_URL := https://github.com/ktrace-dev/kubectl-trace
GIT_REMOTE_ENV = $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=$(PROJECT_URL).git)

# validate-krew uses dist/ as it is and builds it only when it is missing:
# `make dist validate-krew` rebuilds first.
dist/metadata.json:
	$(MAKE) dist

.PHONY: krew-manifest
krew-manifest: dist/metadata.json ## render dist/krew/trace.yaml (for the ktrace krew index) from krew/trace.yaml.tmpl and dist/
	$(GO) run ./krew/render -dist dist -out dist/krew/trace.yaml

.PHONY: validate-krew
validate-krew: krew-manifest ## check the krew manifest against dist/ and install it as krew does; runs `kubectl trace version`
	@mkdir -p bin
	KTRACE_KREW_DIST=$(CURDIR)/dist $(GO) test -tags release -count=1 -v ./krew/ 2>&1 | tee bin/validate-krew.log | grep -E '^\s*(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}
