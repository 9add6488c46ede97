#!/usr/bin/env bash
# Makes sure the base image of our images exists locally, and prints its
# name. With a registry, `debian:bookworm-slim` is used as it is (pulled if
# needed). Without one (CI here), the same Debian release is bootstrapped
# from Debian's package mirror with debootstrap and imported as
# `mq-base:bookworm`.
#
# Needs root (debootstrap) and the debootstrap package when no image exists.
set -euo pipefail
OFFICIAL=debian:bookworm-slim
LOCAL=mq-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for image in "$OFFICIAL" "$LOCAL"; do
    if docker image inspect "$image" >/dev/null 2>&1; then
        echo "$image"
        exit 0
    fi
done
if timeout 20 docker pull -q "$OFFICIAL" >/dev/null 2>&1; then
    echo "$OFFICIAL"
    exit 0
fi
if ! command -v debootstrap >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "base-image.sh: installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
fi
if ! command -v debootstrap >/dev/null; then
    echo "base-image.sh: no $OFFICIAL and no registry; install debootstrap (apt-get install debootstrap)" >&2
    exit 1
fi
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
echo "base-image.sh: bootstrapping Debian bookworm (minbase) from $MIRROR" >&2
debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR" >&2
# What a slim image leaves out: package lists, caches, docs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
tar -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$LOCAL" >&2
echo "$LOCAL"
