#!/usr/bin/env bash
# Build the AstraGuard Edge OpenTelemetry Collector (otelcol-astraguard) with the Collector
# Builder (ocb) from collector/manifest.yaml, and cache the binary.
#
#   bash collector/build.sh               build if missing; progress on stderr, binary path on stdout
#   bash collector/build.sh --print-path  only print where the binary is/would be (no build)
#   bash collector/build.sh --force       rebuild even if cached
#
# Cache: ${ASTRAGUARD_CACHE_DIR:-$HOME/.cache/astraguard}/collector-<hash>/otelcol-astraguard,
# where <hash> is the first 12 hex digits of sha256(manifest.yaml + build.sh): editing either
# file gives a new cache entry; an unchanged one is reused (a cached run takes well under 1 s).
#
# Needs: Go (>= 1.24; `go` on PATH or /usr/local/go/bin/go) and the Go module proxy (GOPROXY) on a
# cold build. Environment: GOFLAGS (default -buildvcs=false), GOCACHE/GOMODCACHE (Go defaults,
# shared with other builds so a second build is incremental), GOMAXPROCS (Go default = cores).
set -euo pipefail

BUILDER_MODULE=go.opentelemetry.io/collector/cmd/builder
BUILDER_VERSION=v0.165.0 # keep equal to the core release in manifest.yaml
BINARY_NAME=otelcol-astraguard

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.yaml"
cache_root="${ASTRAGUARD_CACHE_DIR:-$HOME/.cache/astraguard}"
hash="$(cat "$manifest" "$here/build.sh" | sha256sum | cut -c1-12)"
out_dir="$cache_root/collector-$hash"
binary="$out_dir/$BINARY_NAME"

log() { printf '[collector-build] %s\n' "$*" >&2; }
die() { printf '[collector-build] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
case "${1:-}" in
  --print-path) echo "$binary"; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) die "unknown argument: $1 (use --print-path or --force)" ;;
esac

if [[ $force -eq 0 && -x "$binary" ]]; then
  log "cached: $binary"
  echo "$binary"
  exit 0
fi

# --- toolchain and proxy checks -------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    die "the Go toolchain is missing: install Go >= 1.24 (https://go.dev/dl/) and put 'go' on PATH"
  fi
fi
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
log "using $(go version) (GOPROXY=$(go env GOPROXY), GOCACHE=$(go env GOCACHE))"

# `go mod download` answers from the module cache when it can, so this only needs the network
# on a machine that has never fetched the builder.
mkdir -p "$cache_root"
if ! timeout 120 go mod download -json "$BUILDER_MODULE@$BUILDER_VERSION" >/dev/null 2>"$cache_root/proxy-check.err"; then
  cat "$cache_root/proxy-check.err" >&2 || true
  die "cannot fetch $BUILDER_MODULE@$BUILDER_VERSION: the Go module proxy ($(go env GOPROXY)) is unreachable or blocked (set GOPROXY, or pre-fill GOMODCACHE)"
fi
rm -f "$cache_root/proxy-check.err"

# --- build ----------------------------------------------------------------------------------
# One build per cache entry at a time (npm start and a test run may both ask for it).
exec 9>"$cache_root/collector-$hash.lock"
if command -v flock >/dev/null 2>&1; then
  log "waiting for build lock" && flock 9
  if [[ $force -eq 0 && -x "$binary" ]]; then log "built by another process: $binary"; echo "$binary"; exit 0; fi
fi

work="$(mktemp -d "$cache_root/collector-$hash.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Point dist.output_path at the scratch dir; everything else in the manifest is used as is.
sed -E "s#^(  output_path:).*#\1 $work/dist#" "$manifest" >"$work/manifest.yaml"
grep -q "output_path: $work/dist" "$work/manifest.yaml" || die "manifest.yaml must have a dist.output_path line"

log "building $BINARY_NAME with ocb $BUILDER_VERSION (cold builds take minutes on 2 cores)"
start=$(date +%s)
log "step 1/2: go run $BUILDER_MODULE@$BUILDER_VERSION (generate sources, fetch modules, compile)"
(cd "$work" && go run "$BUILDER_MODULE@$BUILDER_VERSION" --config "$work/manifest.yaml") >&2 \
  || die "ocb failed (see the output above)"
[[ -x "$work/dist/$BINARY_NAME" ]] || die "ocb finished but $work/dist/$BINARY_NAME is missing"

log "step 2/2: install into $out_dir"
mkdir -p "$out_dir"
cp "$work/dist/$BINARY_NAME" "$out_dir/$BINARY_NAME.tmp"
mv -f "$out_dir/$BINARY_NAME.tmp" "$binary" # atomic: readers never see a half-written binary
elapsed=$(( $(date +%s) - start ))
size=$(stat -c %s "$binary")
{
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "builder=$BUILDER_MODULE@$BUILDER_VERSION"
  echo "go=$(go env GOVERSION)"
  echo "build_seconds=$elapsed"
  echo "size_bytes=$size"
} >"$out_dir/build-info.txt"
log "done in ${elapsed}s, $((size / 1024 / 1024)) MiB: $binary"
echo "$binary"
