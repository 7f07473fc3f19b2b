#!/usr/bin/env bash
# Build or install the backends the local stack needs, and print where they are.
#
#   bash scripts/build-backends.sh               build/install what is missing
#   bash scripts/build-backends.sh --print-paths only print the paths (no build; may not exist)
#   bash scripts/build-backends.sh --force       rebuild Jaeger even if cached
#
# Progress goes to stderr; stdout gets exactly three lines that callers (scripts/start.mjs,
# test/support/stack.ts) parse:
#   JAEGER_BIN=/root/.cache/astraguard/jaeger-<hash>/jaeger
#   PROMETHEUS_BIN=/usr/bin/prometheus
#   ALERTMANAGER_BIN=/usr/bin/prometheus-alertmanager
#
# Jaeger v2 (an OpenTelemetry Collector distribution) is built from its Go module
# github.com/jaegertracing/jaeger/cmd/jaeger at JAEGER_VERSION. Its go.mod has a `replace`
# directive, so `go install pkg@version` refuses it; we build it from a throw-away wrapper module
# that requires it and repeats the replace. Cached under
# ${ASTRAGUARD_CACHE_DIR:-$HOME/.cache/astraguard}/jaeger-<sha256(this script), 12 hex>/jaeger.
#
# Prometheus: Debian's package (2.42; `apt-get install prometheus`). When `prometheus` is not on
# PATH and we run as root with apt-get, we install it (without recommends) and make sure the
# package's own service is not left running: the stack starts its own Prometheus process.
# PROMETHEUS_BIN overrides the binary (e.g. a Prometheus 3 you built or downloaded).
# Alertmanager: Debian's prometheus-alertmanager package (0.25), installed the same way;
# ALERTMANAGER_BIN overrides it.
set -euo pipefail

JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=v1.76.0 # v1.x tags are the go-gettable ones; they contain Jaeger v2 (cmd/jaeger)
JAEGER_V2_VERSION=v2.13.0 # the Jaeger v2 release tag on the same commit as $JAEGER_VERSION (shown by `jaeger version`)
JAEGER_SARAMA_REPLACE="github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0" # from its go.mod

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${ASTRAGUARD_CACHE_DIR:-$HOME/.cache/astraguard}"
hash="$(sha256sum "$here/build-backends.sh" | cut -c1-12)"
jaeger_dir="$cache_root/jaeger-$hash"
jaeger_bin="$jaeger_dir/jaeger"

log() { printf '[backends-build] %s\n' "$*" >&2; }
die() { printf '[backends-build] ERROR: %s\n' "$*" >&2; exit 1; }

prometheus_path() {
  if [[ -n "${PROMETHEUS_BIN:-}" ]]; then echo "$PROMETHEUS_BIN"; return; fi
  command -v prometheus 2>/dev/null || echo /usr/bin/prometheus
}

alertmanager_path() {
  if [[ -n "${ALERTMANAGER_BIN:-}" ]]; then echo "$ALERTMANAGER_BIN"; return; fi
  command -v prometheus-alertmanager 2>/dev/null || echo /usr/bin/prometheus-alertmanager
}

force=0
case "${1:-}" in
  --print-paths) echo "JAEGER_BIN=$jaeger_bin"; echo "PROMETHEUS_BIN=$(prometheus_path)"; echo "ALERTMANAGER_BIN=$(alertmanager_path)"; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) die "unknown argument: $1 (use --print-paths or --force)" ;;
esac

# --- Jaeger ---------------------------------------------------------------------------------
build_jaeger() {
  if ! command -v go >/dev/null 2>&1; then
    if [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"
    else die "the Go toolchain is missing: install Go >= 1.24 (https://go.dev/dl/) and put 'go' on PATH"; fi
  fi
  export GOFLAGS="${GOFLAGS:--buildvcs=false}"
  mkdir -p "$cache_root"
  exec 8>"$cache_root/jaeger-$hash.lock"
  if command -v flock >/dev/null 2>&1; then
    log "waiting for Jaeger build lock" && flock 8
    if [[ $force -eq 0 && -x "$jaeger_bin" ]]; then log "Jaeger built by another process: $jaeger_bin"; return; fi
  fi
  log "building Jaeger $JAEGER_VERSION with $(go version) (GOPROXY=$(go env GOPROXY)); cold builds take minutes"
  local work start elapsed size
  work="$(mktemp -d "$cache_root/jaeger-$hash.build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  cat >"$work/go.mod" <<EOF
module astraguard.local/jaeger-build

go 1.24

replace $JAEGER_SARAMA_REPLACE
EOF
  start=$(date +%s)
  log "step 1/3: resolve $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION"
  if ! (cd "$work" && timeout 900 go get "$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION") >&2; then
    die "cannot fetch $JAEGER_MODULE@$JAEGER_VERSION and its modules: the Go module proxy ($(go env GOPROXY)) is unreachable or refuses a module (see above)"
  fi
  log "step 2/3: go build (stripped, -trimpath)"
  local version_pkg="$JAEGER_MODULE/internal/version"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X $version_pkg.latestVersion=$JAEGER_V2_VERSION -X $version_pkg.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o "$work/jaeger" "$JAEGER_MODULE/cmd/jaeger") >&2 \
    || die "go build of Jaeger failed (see above)"
  log "step 3/3: install into $jaeger_dir"
  mkdir -p "$jaeger_dir"
  cp "$work/jaeger" "$jaeger_bin.tmp" && mv -f "$jaeger_bin.tmp" "$jaeger_bin"
  elapsed=$(( $(date +%s) - start )); size=$(stat -c %s "$jaeger_bin")
  {
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "module=$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION"
    echo "go=$(go env GOVERSION)"
    echo "build_seconds=$elapsed"
    echo "size_bytes=$size"
  } >"$jaeger_dir/build-info.txt"
  log "Jaeger done in ${elapsed}s, $((size / 1024 / 1024)) MiB: $jaeger_bin"
}

if [[ $force -eq 0 && -x "$jaeger_bin" ]]; then
  log "Jaeger cached: $jaeger_bin"
else
  build_jaeger
fi

# --- Prometheus and Alertmanager (Debian packages) -------------------------------------------
# apt_install PACKAGE: installs a Debian package without recommends, and makes sure the
# package's own service is not left running (the stack starts its own processes).
apt_install() {
  local package="$1"
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 \
    || die "$package is missing: install it (Debian/Ubuntu: sudo apt-get install --no-install-recommends $package, then 'sudo systemctl disable --now $package')"
  log "installing Debian's $package package (apt-get install --no-install-recommends $package)"
  # A Debian package starts its service on install unless policy-rc.d forbids it; forbid it for
  # this install only (containers usually ship such a file already: then we leave it alone).
  local own_policy=0 apt_ok=1
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2; then
    log "apt-get install failed; retrying after apt-get update"
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2; } || apt_ok=0
  fi
  [[ $own_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
  [[ $apt_ok -eq 1 ]] || die "apt-get install $package failed (see above)"
  # Belt and braces: if the package's service runs anyway (systemd hosts), stop and disable it,
  # so its port is free for the stack's own process.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$package" 2>/dev/null; then
    log "stopping and disabling the $package service the package started"
    systemctl stop "$package" && systemctl disable "$package" >&2 || true
  fi
}

prom="$(prometheus_path)"
if [[ ! -x "$prom" ]]; then
  [[ -z "${PROMETHEUS_BIN:-}" ]] || die "PROMETHEUS_BIN=$PROMETHEUS_BIN is not an executable"
  apt_install prometheus
  prom="$(prometheus_path)"
fi
alertmanager="$(alertmanager_path)"
if [[ ! -x "$alertmanager" ]]; then
  [[ -z "${ALERTMANAGER_BIN:-}" ]] || die "ALERTMANAGER_BIN=$ALERTMANAGER_BIN is not an executable"
  apt_install prometheus-alertmanager
  alertmanager="$(alertmanager_path)"
fi
log "Prometheus: $prom ($("$prom" --version 2>&1 | head -1))"

log "Alertmanager: $alertmanager ($("$alertmanager" --version 2>&1 | head -1))"

echo "JAEGER_BIN=$jaeger_bin"
echo "PROMETHEUS_BIN=$prom"
echo "ALERTMANAGER_BIN=$alertmanager"
