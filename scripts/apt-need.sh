#!/usr/bin/env bash
# Install those of the named Debian packages that are missing (apt-get, as
# root); nothing when all are there. Every set-up script goes through here.
# Usage: scripts/apt-need.sh WHO PACKAGE...   (WHO: the name in messages)
# Exit: 0 all there; 2 some missing and this is not root; apt-get's on failure.
set -euo pipefail
who=$1
shift
missing=()
for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "$who: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "$who: packages are missing and this is not root: run as root" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
