#!/usr/bin/env bash
# Text-to-image with polydiff: a pixel model on generated shapes (with prompts held out of
# training), a latent (VAE) model on real handwritten digits, their pictures and their scores.
#
#   bash examples/image/run.sh                 # quick preset (about 15 minutes on 2 CPU cores)
#   PRESET=full bash examples/image/run.sh     # the configuration of docs/research/image.md
#   OUT=/tmp/image bash examples/image/run.sh  # where the runs go (default: runs/image-$PRESET)
set -euo pipefail

PRESET=${PRESET:-quick}
OUT=${OUT:-runs/image-${PRESET}}

# `polydiff` from the PATH, else from the repository's .venv (what `make demo` sets up)
POLYDIFF=polydiff
if ! command -v polydiff >/dev/null; then
    POLYDIFF="$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/polydiff"
    [[ -x $POLYDIFF ]] || { echo "run.sh: no polydiff command; pip install -e . -e plugins/image" >&2; exit 1; }
fi

# 1. shapes on pixels: train (checkpoints, metrics.jsonl and loss.png in $OUT/shapes)
"$POLYDIFF" train image --dataset shapes --preset "$PRESET" --out "$OUT/shapes"

# 2. prompts the model never saw in training (held-out colour x shape x position combinations),
#    with the reverse process: x_t and the predicted x0 at 8 steps from t=999 to t=0
"$POLYDIFF" sample "$OUT/shapes" --num 4 --trajectory --out "$OUT/shapes/samples/held-out.png" \
    --prompt "a red circle at the top left" --prompt "a green triangle at the bottom right" \
    --prompt "a cyan cross at the top right" --prompt "a magenta circle at the bottom left"

# 3. the forward process q(x_t | x_0) on real training images
"$POLYDIFF" noise image --checkpoint "$OUT/shapes" --out "$OUT/shapes/forward.png"

# 4. attribute accuracy (colour from hue, position from the centroid, shape from a CNN trained on
#    real shapes) for held-out and seen prompts -> $OUT/shapes/eval/metrics.json + samples.png
"$POLYDIFF" evaluate "$OUT/shapes" --num-per-prompt 4

# 5. digits on VAE latents: the autoencoder is trained first (vae_reconstructions.png), frozen,
#    and its latents scaled to unit variance; then diffusion on 4x4x4 latents
"$POLYDIFF" train image --dataset digits --encoder vae --preset "$PRESET" --out "$OUT/digits-vae"
"$POLYDIFF" sample "$OUT/digits-vae" --num 8 --out "$OUT/digits-vae/samples/digits.png" \
    --prompt "the digit zero" --prompt "the digit three" --prompt "the digit seven"

# 6. accuracy of a classifier trained on real digits, Frechet distance in its feature space
"$POLYDIFF" evaluate "$OUT/digits-vae" --num-per-prompt 10

cat <<DONE

pictures and metrics under $OUT:
  $OUT/shapes/samples/held-out.png             held-out prompts
  $OUT/shapes/samples/held-out-trajectory.png  the reverse process
  $OUT/shapes/forward.png                      the forward process
  $OUT/shapes/loss.png                         training loss
  $OUT/shapes/eval/metrics.json                shapes scores (held_out / seen)
  $OUT/digits-vae/vae_reconstructions.png      the first stage
  $OUT/digits-vae/samples/digits.png           digits from the latent model
  $OUT/digits-vae/eval/metrics.json            digits scores
DONE
