#!/usr/bin/env bash
# `npm run gpu:pack [-- DIR]`: packs what a GPU machine needs to run tfjs-ddp's GPU benchmarks when
# it has no Node, no npm and no network: the bundle (scripts/bundle.mjs), this machine's node and
# nats-server binaries, the Vulkan loader .debs (Dawn reaches NVIDIA GPUs through Vulkan) and a
# subset of Fashion-MNIST. Writes DIR (default .carry/gpu, git-ignored); scripts/gpu/run.sh runs it.
# Everything is xz-compressed to stay small: the kit must travel beside the repository.
#   GPU_TRAIN_SAMPLES   training images to carry (default 30000 of 60000; about 13 MB)
#   FASHION_MNIST_DIR   where the dataset is (default /usr/share/datasets/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.carry/gpu}
samples=${GPU_TRAIN_SAMPLES:-30000}
fashion=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
say() { echo "gpu:pack: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "$1 is needed: $2"; exit 1; }; }
need xz 'apt-get install -y xz-utils'
need nats-server 'apt-get install -y nats-server'
[ -f "$fashion/train-images-idx3-ubyte.gz" ] || { say "no Fashion-MNIST at $fashion (apt-get install -y dataset-fashion-mnist, or set FASHION_MNIST_DIR)"; exit 1; }

rm -rf "$dir" && mkdir -p "$dir/fashion-mnist" "$dir/debs"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT

say "bundling (npm run build, then scripts/bundle.mjs)"
npm run -s build
node scripts/bundle.mjs --out "$tmp/bundle" --check
say "compressing the bundle, node and nats-server with xz (a minute or two)"
tar -C "$tmp" -cf - bundle | xz -6 -T0 >"$dir/bundle.tar.xz"
xz -6 -T0 -c "$(command -v node)" >"$dir/node.xz"
xz -6 -T0 -c "$(command -v nats-server)" >"$dir/nats-server.xz"

say "the first $samples training images of $fashion"
# The benchmarks' subset writer, under the dataset's own file names, so run.sh reads the folder as
# FASHION_MNIST_DIR.
node --input-type=module -e '
  import { writeFashionSubset } from "./bench/scaling/fashion.mjs";
  const [from, to, samples] = process.argv.slice(1);
  await writeFashionSubset(to, "train", Number(samples), { from, gzip: true, names: "dataset" }).catch((err) => {
    console.error(`gpu:pack: GPU_TRAIN_SAMPLES=${samples}: ${err.message}`);
    process.exit(1);
  });
' "$fashion" "$dir/fashion-mnist" "$samples"

say "Vulkan loader .debs (amd64)"
lists=$tmp/apt-lists && mkdir -p "$lists/partial"
apt_o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
if apt-get "${apt_o[@]}" update >/dev/null 2>&1 && (cd "$dir/debs" && apt-get "${apt_o[@]}" download libvulkan1 >/dev/null 2>&1); then
  say "  $(ls "$dir/debs")"
else
  say "  could not download libvulkan1: the GPU machine must have the Vulkan loader itself"
fi

total=$(du -sm "$dir" | cut -f1)
say "kit in $dir: ${total} MiB"
du -sh "$dir"/* >&2
