#!/usr/bin/env bash
# Install the Debian 12 packages needed to build and test kalavara, with
# sanitizers (g++'s runtimes come with build-essential), fuzzing (clang's
# libFuzzer and sanitizer runtimes, and llvm-symbolizer for readable
# reports), packaging (cpack -G DEB and its tests: dpkg-shlibdeps, file,
# lintian, adduser, systemd-analyze), Prometheus's promtool, which the
# tests check the metrics and the example alert rules with, and etcd (the
# server the store tests start, etcdctl to look at it by hand) with faketime.
# Cheap and silent when everything is already installed, so build.sh can
# call it on every run.
set -euo pipefail

packages=(
  build-essential
  cmake
  ninja-build
  ccache
  pkg-config
  git
  curl
  libboost1.81-dev
  libboost-json1.81-dev
  librocksdb-dev
  libcli11-dev
  libspdlog-dev
  libfmt-dev
  libgtest-dev
  libssl-dev
  libxxhash-dev
  libsystemd-dev
  prometheus
  clang-14
  libclang-rt-14-dev
  llvm-14
  dpkg-dev
  file
  lintian
  adduser
  systemd
  # On a host with systemd, installing etcd-server may start a system etcd
  # on 127.0.0.1:2379/2380. The tests never use those ports: each cluster
  # they start (tests/support/etcd_cluster.hpp) runs on ports picked free.
  etcd-server
  etcd-client
  faketime
)

# dpkg-query is a local database lookup: fast, no network, no root needed.
# Anything not exactly "install ok installed" (absent, half-installed,
# removed with config files left) counts as missing.
missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: missing packages: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get not found; install the packages above by hand" >&2
  exit 1
fi

# Only escalate when needed. Without a terminal (CI, no stdin) use sudo -n so
# a password prompt fails fast instead of hanging the job.
if ((EUID == 0)); then
  as_root=(env)
elif command -v sudo >/dev/null 2>&1; then
  if [[ -t 0 ]]; then
    as_root=(sudo env)
  else
    as_root=(sudo -n env)
  fi
else
  echo "install-deps: not root and sudo is not available" >&2
  exit 1
fi

# env passes DEBIAN_FRONTEND through sudo, which resets the environment.
apt=("${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -y -q)

echo "install-deps: running apt-get update"
"${apt[@]}" update

echo "install-deps: installing ${missing[*]}"
# Keep existing config files rather than asking about them.
"${apt[@]}" install --no-install-recommends \
  -o Dpkg::Options::=--force-confdef \
  -o Dpkg::Options::=--force-confold \
  "${missing[@]}"

echo "install-deps: done"
