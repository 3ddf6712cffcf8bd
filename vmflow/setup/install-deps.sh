#!/bin/bash
# Install what vmflow needs on Debian 12 (as root), only what is missing:
# Debian packages, uv, the project venv. Safe to run again; fast when done.
# Guest networks: dnsmasq-base (the DHCP server; only a Recommends of libvirt, which
# --no-install-recommends skips), iptables (iptables-nft and ebtables-nft, which the
# hosts and libvirt's nwfilter run; not the `ebtables` package: that is ebtables-legacy,
# which these kernels cannot run), conntrack (flushing NAT state of floating IPs),
# nftables (the `nft` of the floating IPs' NAT table in each host's namespace),
# libvirt-daemon-config-nwfilter (clean-traffic and the other stock filters).
set -euo pipefail
cd "$(dirname "$0")/../.."
PKGS="libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
      qemu-utils qemu-guest-agent nfs-common busybox-static linux-image-amd64 libvirt-dev pkg-config gcc
      e2fsprogs kmod cpio gzip xz-utils iproute2 util-linux procps genisoimage postgresql-15
      openssh-client nfs-ganesha nfs-ganesha-vfs dbus rpcbind libnfs-utils btrfs-progs
      dnsmasq-base iptables conntrack nftables libvirt-daemon-config-nwfilter"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $missing >/dev/null
fi
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv"
  python3 -m pip install -q uv 2>/dev/null || pip install -q --break-system-packages uv
fi
# libvirt-python builds from source against libvirt-dev (PyPI has only an sdist)
uv sync --frozen -q
