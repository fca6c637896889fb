#!/usr/bin/env bash
# Text-to-video with polydiff: train the factorised space-time UNet on generated moving shapes
# (with prompts held out of training), sample seen and held-out prompts with the reverse
# process, show the forward process, and score motion and colour with offline checkers.
#
#   bash examples/video/run.sh                  # quick preset (about 5 minutes on 2 CPU cores)
#   PRESET=full bash examples/video/run.sh      # the figures of docs/benchmarks.md (GPU advised)
#   OUT=/tmp/video bash examples/video/run.sh
set -euo pipefail

PRESET=${PRESET:-quick}
OUT=${OUT:-runs/video-${PRESET}}

# 1. train (checkpoints in $OUT/checkpoints, losses in $OUT/metrics.jsonl and $OUT/loss.png)
polydiff train video --dataset moving-shapes --preset "$PRESET" --out "$OUT"

# 2. two prompts seen in training, two held out of it (polydiff_video.attributes.default_held_out),
#    2 clips each: one GIF per clip, a contact sheet, and the reverse process of every clip
#    (x_t and the predicted x0 at 8 steps from t=999 to t=0)
polydiff sample "$OUT" --num 2 --trajectory --out "$OUT/samples/sample.gif" \
    --prompt "a red circle moving left" \
    --prompt "a blue triangle moving down" \
    --prompt "a red square moving left" \
    --prompt "a green circle moving down"

# 3. the forward process q(x_t | x_0) on real training clips
polydiff noise video --checkpoint "$OUT" --out "$OUT/noise/forward.png"

# 4. 8 seen + 8 held-out prompts, 4 clips each, scored by the offline checkers (motion direction,
#    colour, area stability, temporal consistency; real clips as the ceiling)
#    -> $OUT/eval/metrics.json, samples_seen.png, samples_held_out.png, one GIF per prompt
polydiff evaluate "$OUT" --num-per-prompt 4

echo "clips, pictures and metrics under $OUT (samples/, noise/, eval/metrics.json)"
