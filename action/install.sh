#!/usr/bin/env bash
# Installs the mesh-gitops release binary for this runner: downloads
# mesh-gitops-<target>.tar.gz and the release's SHA256SUMS, checks the archive against its
# checksum, unpacks it into $RUNNER_TEMP and adds it to $GITHUB_PATH.
#
# $1: the release (a tag such as v0.2.0, or "latest"). MESH_GITOPS_RELEASES: the repository
# that publishes them (owner/name). The names are those .github/workflows/release.yml uploads.
set -euo pipefail

version="${1:-latest}"
repo="${MESH_GITOPS_RELEASES:?the repository publishing the releases}"
server="${GITHUB_SERVER_URL:-https://github.com}"

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *)
    echo "::error::mesh-gitops publishes no binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
    exit 1
    ;;
esac

if [ "$version" = latest ]; then
  url="$server/$repo/releases/latest/download"
else
  url="$server/$repo/releases/download/$version"
fi
asset="mesh-gitops-$target.tar.gz"
dir="${RUNNER_TEMP:?}/mesh-gitops-bin"
mkdir -p "$dir"
cd "$dir"
curl --fail --silent --show-error --location --retry 3 -o "$asset" "$url/$asset"
curl --fail --silent --show-error --location --retry 3 -o SHA256SUMS "$url/SHA256SUMS"

# Only the line for this asset: a sum file that lacks it fails, it is not skipped.
line=$(awk -v a="$asset" '$2 == a || $2 == "*" a' SHA256SUMS)
if [ -z "$line" ]; then
  echo "::error::SHA256SUMS of $version has no checksum for $asset"
  exit 1
fi
if command -v sha256sum >/dev/null 2>&1; then
  echo "$line" | sha256sum --check --strict
else
  echo "$line" | shasum -a 256 --check --strict
fi

tar -xzf "$asset" mesh-gitops
chmod +x mesh-gitops
echo "$dir" >> "${GITHUB_PATH:?}"
"$dir/mesh-gitops" --version
