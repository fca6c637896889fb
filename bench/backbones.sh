#!/usr/bin/env bash
# UNet against DiT at matched parameters, on the CPU (docs/backbones.md).
# Usage: OUT=/tmp/backbones bash bench/backbones.sh [image|tts|video ...]
# Each pair trains side by side (same load), one thread each, under nice; then each run is
# evaluated by its plugin's evaluator and its sampling is timed; last, each backbone's training
# step and network evaluation are timed alone (bench/backbones_step.py).
set -u
OUT=${OUT:-/tmp/backbones}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
declare -A STEPS=([image]=800 [tts]=400 [video]=300)
declare -A DIT=(
  [image]="--set backbone.hidden_size=64 --set backbone.depth=6 --set backbone.patch_size=[2]"
  [tts]="--set backbone.hidden_size=128 --set backbone.depth=7 --set backbone.patch_size=[4]"
  [video]="--set backbone.hidden_size=64 --set backbone.depth=3 --set backbone.patch_size=[1,2,2]"
)
mods=("$@"); [ ${#mods[@]} -eq 0 ] && mods=(image tts video)
for mod in "${mods[@]}"; do
  for bb in unet dit; do
    extra=""; [ "$bb" = dit ] && extra=${DIT[$mod]}
    ( /usr/bin/time -v nice -n 10 polydiff train "$mod" --backbone "$bb" --steps "${STEPS[$mod]}" \
        --out "$OUT/$mod-$bb" --overwrite --no-progress $extra \
        > "$OUT/$mod-$bb.train.log" 2> "$OUT/$mod-$bb.time.log" ) &
  done
  wait
  for bb in unet dit; do
    /usr/bin/time -v nice -n 10 polydiff evaluate "$OUT/$mod-$bb" --no-progress \
      > "$OUT/$mod-$bb.eval.log" 2> "$OUT/$mod-$bb.evaltime.log"
    nice -n 10 python bench/backbones_sampling.py "$OUT/$mod-$bb" > "$OUT/$mod-$bb.sampling.json"
  done
done
# Steps in isolation: CPU seconds per training step / network evaluation, peak RSS added.
for mod in "${mods[@]}"; do
  nice -n 10 python bench/backbones_step.py "$mod" unet >> "$OUT/steps.jsonl"
  nice -n 10 python bench/backbones_step.py "$mod" dit ${DIT[$mod]} >> "$OUT/steps.jsonl"
done
