#!/bin/sh
# Install the Debian 12 packages scpkit needs to build, test and demo.
# Idempotent: installs only what is missing, with apt-get only.
set -eu
PKGS="build-essential cmake pkg-config libssl-dev clang libclang-rt-14-dev
      pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools
      softhsm2 libsqlite3-dev libjson-c-dev libp11-kit-dev python3
      valgrind iproute2 doxygen python3-pyscard python3-cryptography
      libevent-dev libcurl4-openssl-dev chromium libpq-dev postgresql-15 openssl
      libtsan2"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "scpkit: missing packages:$missing" >&2
    echo "scpkit: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || true
apt-get install -y -q --no-install-recommends $missing
