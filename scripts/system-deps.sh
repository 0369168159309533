#!/usr/bin/env bash
# Installs the Debian packages the demo or the tests need, only those that are missing:
#   system-deps.sh demo   nats-server and Fashion-MNIST
#   system-deps.sh test   those, plus Prometheus and Chromium (the metrics and report tests)
# Run as root (or with sudo available); otherwise it prints the command to run and fails.
set -euo pipefail

for_what=${1:-test}
missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# Where the tests and benchmarks look for it; the package installs it at the default.
[ -f "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)
if [ "$for_what" = test ]; then
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "system-deps: missing ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
echo "system-deps: installed ${missing[*]}" >&2
