#!/usr/bin/env bash
# Installs and starts what the integration tests need on a Debian machine (as root):
# unshare (util-linux), a C compiler for test helpers, busybox-static for FROM scratch
# images, python3, strace, and a running Docker engine. Idempotent; quick when all is present.
set -euo pipefail

need=()
command -v unshare >/dev/null || need+=(util-linux)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v file >/dev/null || need+=(file)
command -v python3 >/dev/null || need+=(python3)
command -v script >/dev/null || need+=(bsdutils)
command -v dockerd >/dev/null || need+=(docker.io)
# The single-file release (npm run release, test/release.test.ts): the stub's cross
# compiler, static libc for a FROM scratch test program, and qemu-user for arm64 and for
# amd64 on a CPU without AVX2. Both architectures' libc6 and Bun runtimes are fetched by
# the build itself (scripts/release/lock.ts: apt-get download, dpkg-deb, flock, npm pack).
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v flock >/dev/null || need+=(util-linux)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ "$(uname -m)" != x86_64 ] || need+=(libc6-dev)
command -v qemu-aarch64-static >/dev/null && command -v qemu-x86_64-static >/dev/null || need+=(qemu-user-static)
command -v setpriv >/dev/null || need+=(util-linux)
# The release's signatures (test/release-trust.test.ts): gpg for a throwaway key, gpgv
# to check them as the README's Dockerfile does.
command -v gpg >/dev/null || need+=(gnupg)
command -v gpgv >/dev/null || need+=(gpgv)
# The native exit's test (test/native-reaping.test.ts) reads pidone's system calls.
command -v strace >/dev/null || need+=(strace)
# The services Docker proof (test/docker-services.test.ts) builds a Debian image with
# openssh-server and cron.
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
# The HTTP endpoint's test (test/control-http.test.ts) reads /metrics with a real
# Prometheus parser: Debian's, under Debian's python3 (not one earlier on PATH).
/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null || need+=(python3-prometheus-client)
# The readiness protocols' test (test/services-notify.test.ts) speaks sd_notify with
# Debian's own client; the package installs systemd without making it PID 1 of anything.
command -v systemd-notify >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-test-env: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (setsid dockerd >/tmp/pidone-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  docker info >/dev/null 2>&1 || { echo "setup-test-env: dockerd did not start (see /tmp/pidone-dockerd.log)" >&2; exit 1; }
fi
