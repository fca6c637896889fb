#!/usr/bin/env bash
# Text-to-image with polydiff: a pixel model on generated shapes (with prompts held out of
# training), a latent (VAE) model on real handwritten digits, their pictures and their scores.
#
#   bash examples/image/run.sh                 # quick preset (minutes on 2 CPU cores)
#   PRESET=full bash examples/image/run.sh     # the figures of docs/benchmarks.md ("Image")
#   OUT=/tmp/image bash examples/image/run.sh
set -euo pipefail

PRESET=${PRESET:-quick}
OUT=${OUT:-runs/image-${PRESET}}

# 1. shapes on pixels: train (checkpoints, metrics.jsonl and loss.png in $OUT/shapes)
polydiff train image --dataset shapes --preset "$PRESET" --out "$OUT/shapes"

# 2. prompts the model never saw in training (a held-out colour x shape x position combination),
#    with the reverse process: x_t and the predicted x0 at 8 steps from t=999 to t=0
polydiff sample "$OUT/shapes" --num 4 --trajectory --out "$OUT/shapes/samples/held-out.png" \
    --prompt "a red circle at the top left" --prompt "a cyan cross at the top right"

# 3. the forward process q(x_t | x_0) on real training images
polydiff noise image --checkpoint "$OUT/shapes" --out "$OUT/shapes/forward.png"

# 4. attribute accuracy (colour from hue, position from the centroid, shape from a CNN trained on
#    real shapes) for held-out and seen prompts -> $OUT/shapes/eval/metrics.json + samples.png
polydiff evaluate "$OUT/shapes" --num-per-prompt 4

# 5. digits on VAE latents: the autoencoder is trained first (vae_reconstructions.png), frozen,
#    and its latents scaled to unit variance; then diffusion on 4x4x4 latents
polydiff train image --dataset digits --encoder vae --preset "$PRESET" --out "$OUT/digits-vae"
polydiff sample "$OUT/digits-vae" --num 8 --out "$OUT/digits-vae/samples/digits.png" \
    --prompt "the digit zero" --prompt "the digit three" --prompt "the digit seven"

# 6. accuracy of a classifier trained on real digits, Frechet distance in its feature space
polydiff evaluate "$OUT/digits-vae" --num-per-prompt 10

echo "pictures and metrics under $OUT"
