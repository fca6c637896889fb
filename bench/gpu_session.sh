#!/usr/bin/env bash
# One lent GPU session, as one prepared script (docs/benchmarks.md's GPU figures come from it):
#   1. the peers benchmark on the GPU (fp32, bf16, bf16 + torch.compile);
#   2. the `full` presets trained side by side on the one GPU: image/shapes (pixels),
#      image/digits (VAE latents), video/moving-shapes; each stops at its step count or, if
#      the time budget runs out first, on SIGTERM (the trainer saves and exits; the step
#      reached is in the run's checkpoints/latest);
#   3. `polydiff evaluate` of each run and the sampler-quality curves on the image runs.
# Everything small (configs, metrics, pictures, logs, bench JSON) ends up in $OUT/results.tgz.
#
# Usage, from the repository root on the GPU machine (Python with torch; nothing downloaded):
#   pip wheel --no-deps --no-build-isolation -w .whl . plugins/image plugins/video   # here, first
#   OUT=/tmp/out bash bench/gpu_session.sh
# SMOKE=1 runs every phase for a few steps on the CPU (checks the script itself).
set -uo pipefail

OUT=${OUT:-gpu-out}
RUNS=${RUNS:-/tmp/polydiff-runs}
SMOKE=${SMOKE:-0}
PEERS_S=${PEERS_S:-140}  # seconds for each phase (the lease is short: keep the sum under ~9 min)
TRAIN_S=${TRAIN_S:-230}
EVAL_S=${EVAL_S:-150}
mkdir -p "$OUT" "$RUNS/logs"
LOG="$RUNS/logs"
T0=$(date +%s)
stamp() { echo "[$(($(date +%s) - T0)) s] $*"; }

pack() {
    stamp "packing results"
    cp bench/results/*cuda* "$RUNS/" 2>/dev/null
    tar czf "$OUT/results.tgz" -C "$RUNS" \
        --exclude='checkpoints' --exclude='*.safetensors' --exclude='*.pt' . 2>/dev/null
    # the last checkpoint of each run (weights, EMA, config), in parts of at most 15 MB
    tar czf - -C "$RUNS" --exclude='optimizer.safetensors' $(cd "$RUNS" && ls -d */checkpoints 2>/dev/null) \
        2>/dev/null | split -b 15M - "$OUT/checkpoints.tgz.part-"
    ls -la "$OUT"
}
trap pack EXIT

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
PY=python3
if [ "$SMOKE" = 1 ]; then
    DEV=cpu
    PY=${PY_SMOKE:-.venv/bin/python}
    TRAIN_ARGS=(--steps 6 --set train.encoder_steps=4 --set train.log_every=2)
    EVAL_ARGS=(--num-per-prompt 1 --steps 3)
    VIDEO_STEPS=6
else
    DEV=cuda
    TRAIN_ARGS=(--set train.num_workers=4)
    EVAL_ARGS=()
    VIDEO_STEPS=${VIDEO_STEPS:-6000}
    IMAGE_STEPS=${IMAGE_STEPS:-12000}  # the time budget may stop them first: the step reached is reported
fi
stamp "python: $($PY -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')"
$PY -m polydiff plugins | head -20

# 1. peers (alone on the GPU: its timings are reported)
if [ "$SMOKE" = 1 ]; then
    PEERS_ARGS=(--device cpu --rounds 1 --train-steps 1 --forwards 1 --out "$RUNS/peers-smoke.json")
else
    PEERS_ARGS=(${PEERS_CMD_ARGS:---gpu --settings 32x32-b128 --max-seconds 110 --out $RUNS/peers-cuda.json})
fi
stamp "peers: ${PEERS_ARGS[*]}"
timeout -s TERM "$PEERS_S" $PY bench/peers.py "${PEERS_ARGS[@]}" >"$LOG/peers.txt" 2>&1
stamp "peers exit $?"; tail -30 "$LOG/peers.txt"

# 2. the full presets, side by side
train() {  # name, then polydiff train arguments
    local name=$1; shift
    # --foreground: the signal goes to the trainer alone, which saves and stops its DataLoader
    # workers; a plain `timeout` signals the whole process group, the workers die first and the
    # trainer fails before it can save (seen on the first GPU session).
    timeout --foreground -s TERM "$TRAIN_S" $PY -m polydiff train "$@" --preset full --device "$DEV" --no-progress \
        --out "$RUNS/$name" "${TRAIN_ARGS[@]}" >"$LOG/train-$name.txt" 2>&1
    echo "exit $?" >>"$LOG/train-$name.txt"
}
stamp "training"
train shapes-full image --dataset shapes ${IMAGE_STEPS:+--steps $IMAGE_STEPS} &
train digits-full image --dataset digits --encoder vae ${IMAGE_STEPS:+--steps $IMAGE_STEPS} &
train video-full video --steps "$VIDEO_STEPS" &
wait
for name in shapes-full digits-full video-full; do
    stamp "$name: $(tail -3 "$LOG/train-$name.txt" | tr '\n' ' ')"
    readlink "$RUNS/$name/checkpoints/latest" || cat "$RUNS/$name/checkpoints/latest" 2>/dev/null
done

# 3. evaluation and sampler quality, side by side
stamp "evaluating"
for name in shapes-full digits-full video-full; do
    timeout -s TERM "$EVAL_S" $PY -m polydiff evaluate "$RUNS/$name" --device "$DEV" "${EVAL_ARGS[@]}" \
        >"$LOG/eval-$name.txt" 2>&1 &
done
SQ="$RUNS/sampler_quality"; mkdir -p "$SQ"
for spec in "digits 40" "shapes 6"; do
    set -- $spec
    if [ "$SMOKE" = 1 ]; then
        SQ_ARGS=(--device cpu --reference-nfe 4 --nfe 2 --num-per-prompt 1)
    else
        SQ_ARGS=(--device cuda --num-per-prompt "$2" --clip-reference --threads 6 --max-seconds 60)
    fi
    timeout -s TERM "$EVAL_S" $PY bench/sampler_quality.py --checkpoint "$1=$RUNS/$1-full" "${SQ_ARGS[@]}" \
        --results-dir "$SQ" --figure "$SQ/sampler_quality-$1.png" --samples-dir "$SQ/samples" \
        >"$LOG/sampler_quality-$1.txt" 2>&1 &
done
wait
for f in "$LOG"/eval-*.txt "$LOG"/sampler_quality-*.txt; do stamp "$f"; tail -15 "$f"; done
stamp "done"
