#!/usr/bin/env bash
# Install everything vnflab needs on a Debian 12 machine (run as root). Idempotent.
#   system packages: iproute2, iptables, Docker engine, busybox-static (proxy image), Python venv
#   Python environment: .venv with the pinned dependencies of pyproject.toml (and the test extras)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

packages=(python3 python3-venv python3-dev gcc make libc6-dev git iproute2 iptables iputils-ping procps util-linux
          busybox-static docker.io ca-certificates qemu-system-x86 cpio lz4
          chromium-headless-shell  # the report test opens report.html in a browser
          qemu-utils debootstrap fdisk e2fsprogs socat apt-cacher-ng openssh-client)  # emulated servers (Xen, Molecule)
missing=()
for pkg in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = 'install ok installed' ] || missing+=("$pkg")
done
# The microVM builder fetches Debian's cloud kernel with apt-get download: it needs package lists.
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "vnflab install: apt packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${VNFLAB_PYTHON:-/usr/bin/python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.vnflab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "vnflab install: ready ($(.venv/bin/ansible --version | sed -n 1p))"
