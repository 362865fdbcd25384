#!/bin/sh
# Builds the packages into target/packages/ (or $TEND_PACKAGES_DIR):
#   tend-agent, tend-server and tend-cli as .deb (cargo deb) and .rpm
#   (cargo generate-rpm, when installed), and MANIFEST ("sha256  file" lines),
#   which tend-server serves with --packages-dir for install.sh.
# TEND_PACKAGE_VERSION=0.0.9 builds them under another version (the upgrade test).
set -eu
cd "$(dirname "$0")/.."

out=${TEND_PACKAGES_DIR:-target/packages}
version=${TEND_PACKAGE_VERSION:-}
mkdir -p "$out"

cargo build --release --locked -p tend-agent -p tend-server -p tend-cli

for bin in tend-agent tend-server tend; do
    rm -rf "target/assets/$bin"
    "target/release/$bin" assets --out "target/assets/$bin"
done

debver=""
[ -n "$version" ] && debver="--deb-version $version"
# shellcheck disable=SC2086 # $debver is empty or two words on purpose
{
    cargo deb -p tend-agent --no-build --no-strip $debver -o "$out"
    cargo deb -p tend-server --no-build --no-strip $debver -o "$out"
    cargo deb -p tend-cli --no-build --no-strip $debver -o "$out"
}

build_rpm() {
    if [ -n "$version" ]; then
        cargo generate-rpm -o "$out" -s "version = \"$version\"" "$@"
    else
        cargo generate-rpm -o "$out" "$@"
    fi
}
if command -v cargo-generate-rpm >/dev/null 2>&1; then
    build_rpm -p agent
    build_rpm -p server
    build_rpm -p cli
else
    echo "build.sh: cargo-generate-rpm is not installed: no .rpm (cargo install cargo-generate-rpm --locked)" >&2
fi

(
    cd "$out"
    for f in *.deb *.rpm; do
        if [ -e "$f" ]; then sha256sum "$f"; fi
    done > MANIFEST
)
echo "packages in $out:"
cat "$out/MANIFEST"
