#!/usr/bin/env bash
# Rebuild every shipped checkpoint in checkpoints/ through the CLI (deterministic seeds).
# Usage: scripts/make_checkpoints.sh [NAME ...]   (no names: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
# One torch thread: on a shared 2-core box two threads spin-wait and cost 5x the CPU time (the course
# block took 25 s of CPU for 3 epochs with two threads, 4.7 s with one, for the same losses).
export OMP_NUM_THREADS=1
out=checkpoints
mkdir -p "$out"

build() {  # build NAME ARGS...  (NAME may sit in a subfolder: course/NAME)
  local name=$1; shift
  if [ "${#wanted[@]}" -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $name " ]]; then return; fi
  echo "== $name" >&2
  "$PY" -m explorer train "$@" --seed 0 --out "$out/$name.safetensors"
}

wanted=("$@")
build mnist-vae-mlp-z2   --dataset mnist --model vae-mlp  --latent-dim 2  --epochs 60
build mnist-vae-mlp-z16  --dataset mnist --model vae-mlp  --latent-dim 16 --epochs 80
build mnist-ae-mlp-z2    --dataset mnist --model ae-mlp   --latent-dim 2  --epochs 60
build mnist-cvae-mlp-z2  --dataset mnist --model cvae-mlp --latent-dim 2  --epochs 60
build mnist-vae-mlp-z2-anchored --dataset mnist --model vae-mlp --latent-dim 2 --epochs 60 --anchor donut,stick --anchor-rate 3
build mnist-fashion-joint-vae --dataset mnist+fashion-mnist --model joint-vae --latent-dim 16 --hidden 320 --epochs 20 --cca-weight 300 --adv-weight 1 --contrastive-weight 300 --temperature 4
build mnist-caption-joint-vae --dataset mnist+caption --model joint-vae --latent-dim 16 --hidden 400 --epochs 40 --contrastive-weight 300 --temperature 4
build fashion-mnist-vae-conv-z16 --dataset fashion-mnist --model vae-conv --latent-dim 16 --epochs 20

# The course's small models (checkpoints/course/, not listed in the sidebar): one 784-100-z MLP
# per latent size, an AE whose latent is as large as its input (784), and the z=2 model trained
# with MSE (BCE vs MSE). 60 epochs, not 20: the unused dimensions of z=32 and z=64 need that long
# to fall below 0.01 nats (z=64: all 64 active at 20 epochs, 37 at 60).
mkdir -p "$out/course"
for z in 1 2 4 8 16 32 64; do
  build course/mnist-vae-z$z --dataset mnist --model vae-mlp --latent-dim $z --hidden 100 --epochs 60
done
build course/mnist-ae-z784 --dataset mnist --model ae-mlp --latent-dim 784 --hidden 100 --epochs 60
build course/mnist-vae-z2-mse --dataset mnist --model vae-mlp --latent-dim 2 --hidden 100 --epochs 60 --recon mse
