#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the kit `npm run gpu:pack` made:
#   bash scripts/gpu/run.sh [KIT_DIR]          (KIT_DIR default .carry/gpu)
# It needs python3 or xz there to unpack, and nothing else: node, nats-server, the bundle and the
# data come from the kit; the Vulkan loader is unpacked from the kit's .debs when the machine has an
# NVIDIA driver but no loader. It prints the GPU, then runs
#   1. the all-reduce benchmark (CPU and network work; the GPU machine's cores),
#   2. the training benchmark: samples/s of the Fashion-MNIST MLP and CNN with 1, 2 and 4 workers
#      on the webgpu backend,
# and writes each report to $OUT (default out/gpu) as well as to stdout.
#   BACKEND        backend of the training benchmark (default webgpu; wasm checks the kit on a CPU)
#   WORLD, SIZES   all-reduce world sizes and MiB (default 2,4,8 and 4,64)
#   WORKERS        training worker counts (default 1,2,4)
#   MLP_SAMPLES, CNN_SAMPLES   training samples per run (default: all the kit has, and 8192)
set -uo pipefail
kit=$(cd "${1:-.carry/gpu}" && pwd) || { echo "gpu:run: no kit at ${1:-.carry/gpu}; make one with npm run gpu:pack" >&2; exit 1; }
out=${OUT:-out/gpu}
backend=${BACKEND:-webgpu}
mkdir -p "$out" && out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/tfjs-ddp-gpu.XXXXXX)
say() { echo "gpu:run: $*" >&2; }

unxz_to() { # FILE.xz DEST
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

if { command -v nvidia-smi >/dev/null || [ -d /usr/local/nvidia ]; } && ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  say "unpacking the Vulkan loader from the kit"
  for f in "$kit"/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && export VK_DRIVER_FILES=$icd

say "unpacking node, nats-server and the bundle into $work"
unxz_to "$kit/node.xz" "$work/node" && unxz_to "$kit/nats-server.xz" "$work/nats-server" || exit 1
chmod +x "$work/node" "$work/nats-server"
unxz_to "$kit/bundle.tar.xz" "$work/bundle.tar" && tar -C "$work" -xf "$work/bundle.tar" || exit 1
export TFJS_DDP_NATS_SERVER=$work/nats-server FASHION_MNIST_DIR=$kit/fashion-mnist
node=$work/node
b=$work/bundle

{
  echo "date: $(date -u +%FT%TZ)"
  echo "node $("$node" --version), tfjs-ddp $("$node" "$b/tfjs-ddp.mjs" --version), $("$work/nats-server" --version)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} | tee "$out/machine.txt"

status=0
say "all-reduce benchmark"
"$node" "$b/bench-allreduce.mjs" --world "${WORLD:-2,4,8}" --sizes "${SIZES:-4,64}" --dtypes f32,bf16 |
  tee "$out/allreduce.txt" || status=1

say "training benchmark on $backend"
# Without MLP_SAMPLES the MLP trains on every image the kit carries (the benchmark's default).
"$node" "$b/bench-scaling.mjs" --backend "$backend" --without-torch --workers "${WORKERS:-1,2,4}" \
  ${MLP_SAMPLES:+--mlp-samples "$MLP_SAMPLES"} --cnn-samples "${CNN_SAMPLES:-8192}" |
  tee "$out/training-$backend.txt" || status=1

rm -rf "$work"
say "reports in $out"
exit $status
