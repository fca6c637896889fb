#!/usr/bin/env bash
# Text-to-speech with polydiff: train Grad-TTS on the embedded spoken digits, synthesise
# held-out sequences, show the reverse and forward processes, and score the model.
#
#   bash examples/tts/run.sh                 # quick preset (a few minutes on 2 CPU cores)
#   PRESET=full bash examples/tts/run.sh     # the figures of docs/benchmarks.md
#   OUT=/tmp/tts bash examples/tts/run.sh
set -euo pipefail

PRESET=${PRESET:-quick}
OUT=${OUT:-runs/tts-${PRESET}}

# 1. train (checkpoints in $OUT/checkpoints, losses in $OUT/metrics.jsonl and $OUT/loss.png)
polydiff train tts --preset "$PRESET" --out "$OUT"

# 2. text in, WAV out: a held-out sequence, then the same one slower and with more noise (variety)
polydiff sample "$OUT" --prompt "six zero four eight" --out "$OUT/samples/six-zero-four-eight.wav" --trajectory
# the same sample (same seed) as its mel spectrogram: a .png --out writes the picture alone
polydiff sample "$OUT" --prompt "six zero four eight" --out "$OUT/samples/six-zero-four-eight.png"
polydiff sample "$OUT" --prompt "six zero four eight" --length-scale 1.4 --temperature 1.5 \
    --out "$OUT/samples/six-zero-four-eight-slow.wav"

# 3. the forward process on real utterances (noising a log-mel towards N(0, I))
polydiff noise tts --num 2 --out "$OUT/forward/forward.wav"

# 4. offline scores on the 30 held-out sequences: word accuracy (DTW digit recogniser),
#    MCD-mel, duration error, real-time factor -> $OUT/eval/metrics.json
polydiff evaluate "$OUT" --num-per-prompt 2
