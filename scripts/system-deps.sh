#!/usr/bin/env bash
# Installs the Debian packages the demo or the tests need, only those that are missing:
#   system-deps.sh demo   nats-server and Fashion-MNIST
#   system-deps.sh test   those, plus Prometheus and Chromium (the metrics and report tests), and
#                         docker.io, mmdebstrap and docker-compose (the container tests: tests/support/containers.ts
#                         starts dockerd when no daemon answers and builds the images from Debian packages)
# Run as root (or with sudo available); otherwise it prints the command to run and fails.
set -euo pipefail

for_what=${1:-test}
missing=()
wanted=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# Where the tests and benchmarks look for it; the package installs it at the default.
[ -f "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)
if [ "$for_what" = test ]; then
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # Wanted, not required: without them the container tests are skipped, saying why. A machine with
  # a runtime that answers (Docker Desktop, a remote DOCKER_HOST) needs no daemon here.
  if [ "${TFJS_DDP_TEST_CONTAINERS:-}" != off ]; then
    command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1 || wanted+=(docker.io)
    command -v mmdebstrap >/dev/null 2>&1 || wanted+=(mmdebstrap)
    command -v docker-compose >/dev/null 2>&1 || wanted+=(docker-compose)
  fi
fi

if [ ${#missing[@]} -eq 0 ] && [ ${#wanted[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
elif [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: ${wanted[*]} not installed, so the container tests will be skipped; to run them: apt-get install -y ${wanted[*]} (as root)" >&2
  exit 0
else
  echo "system-deps: missing ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]} ${wanted[*]}" >&2
  exit 1
fi
missing+=("${wanted[@]}")
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
echo "system-deps: installed ${missing[*]}" >&2
