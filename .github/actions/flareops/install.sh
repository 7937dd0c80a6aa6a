#!/usr/bin/env bash
# Puts a flareops binary on the PATH for the action (action.yml).
#
# Inputs (environment):
#   FLAREOPS_VERSION   a release tag (v0.1.0), or `source` to build the checkout
#   FLAREOPS_REPO      owner/name whose releases hold the binaries
#   FLAREOPS_BASE_URL  optional; default https://github.com/$FLAREOPS_REPO/releases/download
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, RUNNER_TOOL_CACHE, GITHUB_PATH, GITHUB_OUTPUT
#                      as the runner sets them
# Release layout: $BASE/$TAG/flareops-$TARGET.tar.gz (.zip on Windows) and
# $BASE/$TAG/SHA256SUMS (`sha256sum` format, one line per asset).
# A binary already in the tool cache (with the checksum it was verified
# against) is used without downloading. A checksum mismatch fails.
set -euo pipefail

version="${FLAREOPS_VERSION:?version is required (a release tag or source)}"
: "${RUNNER_TEMP:?}" "${GITHUB_PATH:?}" "${GITHUB_OUTPUT:?}"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ "$version" = "source" ]; then
  cargo build --release --locked
  bin_dir="$RUNNER_TEMP/bin"
  mkdir -p "$bin_dir"
  exe=flareops
  [ "${RUNNER_OS:-}" = "Windows" ] && exe=flareops.exe
  cp "target/release/$exe" "$bin_dir/$exe"
  echo "$bin_dir" >> "$GITHUB_PATH"
  echo "path=$bin_dir/$exe" >> "$GITHUB_OUTPUT"
  echo "cache-hit=false" >> "$GITHUB_OUTPUT"
  exit 0
fi

[[ "$version" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] \
  || { echo "::error::version must be a release tag like v0.1.0, or source: got '$version'"; exit 1; }

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  Windows/X64) target=x86_64-pc-windows-msvc ;;
  *) echo "::error::no flareops release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: use version: source"; exit 1 ;;
esac
if [ "$target" = x86_64-pc-windows-msvc ]; then asset="flareops-$target.zip"; exe=flareops.exe
else asset="flareops-$target.tar.gz"; exe=flareops; fi

repo="${FLAREOPS_REPO:?FLAREOPS_REPO (owner/name) is required}"
base="${FLAREOPS_BASE_URL:-https://github.com/$repo/releases/download}"
cache_root="${RUNNER_TOOL_CACHE:-$RUNNER_TEMP/tool-cache}"
dir="$cache_root/flareops/${version#v}/$target"

work="$(mktemp -d "$RUNNER_TEMP/flareops-dl.XXXXXX")"
trap 'rm -rf "$work"' EXIT

curl -fsSL --retry 3 -o "$work/SHA256SUMS" "$base/$version/SHA256SUMS" \
  || { echo "::error::could not download $base/$version/SHA256SUMS"; exit 1; }
want="$(awk -v a="$asset" '{ f=$2; sub(/^\*/, "", f); if (f == a) print $1 }' "$work/SHA256SUMS")"
[[ "$want" =~ ^[0-9a-f]{64}$ ]] || { echo "::error::SHA256SUMS of $version lists no checksum for $asset"; exit 1; }

if [ -x "$dir/$exe" ] && [ "$(cat "$dir/.sha256" 2>/dev/null)" = "$want" ]; then
  echo "flareops $version ($target) from the tool cache"
  hit=true
else
  curl -fsSL --retry 3 -o "$work/$asset" "$base/$version/$asset" \
    || { echo "::error::could not download $base/$version/$asset"; exit 1; }
  got="$(sha256_of "$work/$asset")"
  if [ "$got" != "$want" ]; then
    echo "::error::checksum mismatch for $asset: expected $want, got $got; refusing to run it"
    exit 1
  fi
  mkdir -p "$work/x"
  tar -xf "$work/$asset" -C "$work/x"
  found="$(find "$work/x" -type f -name "$exe" | head -n 1)"
  [ -n "$found" ] || { echo "::error::$asset holds no $exe"; exit 1; }
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$found" "$dir/$exe"; chmod +x "$dir/$exe"
  printf '%s\n' "$want" > "$dir/.sha256"
  echo "flareops $version ($target) downloaded, checksum verified"
  hit=false
fi

echo "$dir" >> "$GITHUB_PATH"
echo "path=$dir/$exe" >> "$GITHUB_OUTPUT"
echo "cache-hit=$hit" >> "$GITHUB_OUTPUT"
