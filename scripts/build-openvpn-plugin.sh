#!/bin/sh
# Builds the devicegate OpenVPN plugin (docker/openvpn/plugin/devicegate-openvpn-plugin.c).
# Needs a C compiler, OpenVPN's plugin header (/usr/include/openvpn/openvpn-plugin.h, Debian package openvpn) and
# libcurl's headers (Debian package libcurl4-openssl-dev).
# Usage: scripts/build-openvpn-plugin.sh [OUTPUT.so]   (default: build/devicegate-openvpn-plugin.so)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$here/build/devicegate-openvpn-plugin.so"}
mkdir -p "$(dirname "$out")"
${CC:-cc} -O2 -Wall -Wextra -Werror -fPIC -shared -o "$out" "$here/docker/openvpn/plugin/devicegate-openvpn-plugin.c" -lcurl
echo "$out"
