#!/usr/bin/env bash
# Train a text-to-video model on moving-shapes, sample seen and held-out prompts, evaluate it,
# and show the forward process. Usage: examples/video/run.sh [quick|full] [RUN_DIR]
#   quick: about 5 minutes on 2 CPU cores; full: the figures in docs/benchmarks.md (GPU advised).
set -euo pipefail
PRESET="${1:-quick}"
RUN="${2:-runs/video-$PRESET}"

polydiff train video --dataset moving-shapes --preset "$PRESET" --out "$RUN"

# two prompts seen in training, two held out of it (see polydiff_video.attributes.default_held_out)
polydiff sample "$RUN" --num 2 --trajectory --out "$RUN/samples/sample.gif" \
  --prompt "a red circle moving left" \
  --prompt "a blue triangle moving down" \
  --prompt "a red square moving left" \
  --prompt "a green circle moving down"

# 8 seen + 8 held-out prompts, 4 clips each, scored by the offline checkers -> metrics.json
polydiff evaluate "$RUN" --out "$RUN/eval"

# the forward (noising) process on real clips
polydiff noise video --checkpoint "$RUN" --out "$RUN/noise/forward.gif"
