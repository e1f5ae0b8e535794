#!/bin/sh
# scripts/release-rockspec.sh X.Y.Z: writes luapay-X.Y.Z-1.rockspec, the scm
# rockspec with its version and release tag (README, "Releasing"). Run it
# again whenever the scm rockspec changes before the release is cut;
# spec/00 checks that nothing else differs.
set -eu
cd "$(dirname "$0")/.."
v=${1:?usage: scripts/release-rockspec.sh X.Y.Z}
sed -e "s/^version = \"scm-1\"$/version = \"$v-1\"/" \
    -e "s|^\(    url = \"git+https://github.com/luapay/luapay.git\",\)$|\1\n    tag = \"v$v\",|" \
    luapay-scm-1.rockspec > "luapay-$v-1.rockspec"
echo "luapay-$v-1.rockspec"
