#!/usr/bin/env bash
# build.sh OUT - build the OpenTelemetry Collector that manifest.yaml
# describes and install it as OUT (make otelcol: bin/tools/otelcol).
#
# The collector builder comes from the Go module proxy (go install), and so
# does every component. The binary is static (CGO_ENABLED=0: it can go into
# an image as it is) and cached outside the work tree under the hash of the
# manifest, the builder's version and the Go toolchain, like the Kubernetes
# binaries of hack/cluster: a cold build takes about 2.5 minutes on 2 cores,
# a second run a second. Builds run niced; the machine is shared.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

out=${1:?usage: build.sh OUT (for example bin/tools/otelcol)}
here=$(cd "$(dirname "$0")" && pwd)
manifest=$here/manifest.yaml
BUILDER_VERSION=${OTELCOL_BUILDER_VERSION:-v0.161.0}
KTRACE_CACHE=${KTRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-trace}

key=$({ cat "$manifest"; echo "builder $BUILDER_VERSION"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-16)
dir=$KTRACE_CACHE/otelcol-$key
bin=$dir/otelcol

if [ ! -x "$bin" ]; then
  builder=$KTRACE_CACHE/otelcol-builder-$BUILDER_VERSION/builder
  if [ ! -x "$builder" ]; then
    echo "installing the collector builder $BUILDER_VERSION (about 20 s)" >&2
    GOBIN=$(dirname "$builder") nice -n 10 go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
  fi
  echo "building the collector of hack/otelcol/manifest.yaml into $dir (about 2.5 min cold)" >&2
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  # The builder takes its output directory from the manifest only: a copy
  # names the cache directory, the committed file stays free of paths.
  sed "s|^dist:\$|dist:\n  output_path: $dir.tmp/src|" "$manifest" > "$dir.tmp/manifest.yaml"
  nice -n 10 "$builder" --config "$dir.tmp/manifest.yaml" >"$dir.tmp/builder.log" 2>&1 ||
    { tail -30 "$dir.tmp/builder.log" >&2; echo "building the collector failed: the whole log is $dir.tmp/builder.log" >&2; exit 1; }
  mv "$dir.tmp/src/otelcol" "$dir.tmp/otelcol"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi

mkdir -p "$(dirname "$out")"
cmp -s "$bin" "$out" 2>/dev/null || install -m 0755 "$bin" "$out"
echo "$out: $("$out" --version)"
