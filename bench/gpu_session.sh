#!/usr/bin/env bash
# One lent GPU session, as one prepared script (docs/benchmarks.md's GPU figures come from it):
#   0. training speed of the video `full` preset alone on the GPU (bench/gpu_speed.py): eager,
#      bf16 autocast, torch.compile with CUDA graphs (reduce-overhead) and default, DataLoader
#      workers with pinned memory, model FLOP utilisation; SPEED=0 skips it, SPEED_S bounds it,
#      SPEED_CMD_ARGS replaces its arguments (e.g. "--modes eager compile-ro --seconds 10");
#   1. the peers benchmark on the GPU (fp32, bf16, bf16 + torch.compile);
#   2. the `full` presets trained side by side on the one GPU: image/shapes (pixels),
#      image/digits (VAE latents), video/moving-shapes; each stops at its step count or, if
#      the time budget runs out first, on SIGTERM (the trainer saves and exits; the step
#      reached is named by the run's `latest` file);
#   3. `polydiff evaluate` of each run and the sampler-quality curves on the image runs.
# Everything small (configs, metrics, pictures, logs, bench JSON) ends up in $OUT/results.tgz.
#
# Usage, from the repository root on the GPU machine (Python with torch; nothing downloaded):
#   pip wheel --no-deps --no-build-isolation -w .whl . plugins/image plugins/video   # here, first
#   OUT=/tmp/out bash bench/gpu_session.sh
# SMOKE=1 runs every phase for a few steps on the CPU (checks the script itself).
# A speed-only session: SPEED_S=500 PEERS=0 MODELS=" " bash bench/gpu_session.sh
# PEERS=0 skips phase 1; MODELS picks the runs of phase 2 (default: all three), e.g.
#   PEERS=0 MODELS="video-full" TRAIN_S=400 bash bench/gpu_session.sh
# and EXTRA_<name> (dashes as underscores) adds `polydiff train` arguments to one run, e.g.
#   MODELS="video-full video-lr1e-3" EXTRA_video_lr1e_3="--lr 1e-3" (a name's prefix before the
#   first dash picks the modality and dataset: shapes, digits or video).
# PRESET_<name> trains one run with another preset than `full`. EXPERT_<name>="<run> [<run>...]"
# evaluates <name> alone (RUN/eval) and with each other run as its denoiser expert (trained with
# a train.timestep_range; RUN/eval-with-<run>; the experts are not evaluated alone), e.g.
#   MODELS="video-full video-expert" PRESET_video_expert=full-expert EXPERT_video_full=video-expert
# KEEP_WEIGHTS=ema brings back the EMA weights alone (half the bytes; copy ema.safetensors to
# model.safetensors to load such a checkpoint).
set -uo pipefail

OUT=${OUT:-gpu-out}
PEERS=${PEERS:-1}
SPEED=${SPEED:-1}
SPEED_S=${SPEED_S:-300}
MODELS=${MODELS:-shapes-full digits-full video-full}
KEEP_CKPT=${KEEP_CKPT:-$MODELS}  # runs whose checkpoints come back, or "best" (one run)
KEEP_WEIGHTS=${KEEP_WEIGHTS:-all}  # or "ema"
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
    # the checkpoints (weights, EMA, config) of the runs in KEEP_CKPT, in parts of at most 15 MB:
    # the device tool brings back 8 files, 16 MB each, 64 MiB in all, in name order, so
    # weights.tgz.part-* come after results.tgz (a `full` video checkpoint is ~63 MB, its EMA ~32 MB)
    local dirs=() name keep=$KEEP_CKPT
    if [ "$keep" = best ]; then  # the run with the best held-out score (video direction, image accuracy)
        keep=$($PY - "$RUNS" $MODELS <<'PYEOF'
import json, sys
from pathlib import Path

def score(name):
    try:
        held = json.loads((Path(sys.argv[1]) / name / "eval" / "metrics.json").read_text())["held_out"]
    except (OSError, KeyError, ValueError):
        return -1.0
    if isinstance(held.get("direction_accuracy"), (int, float)):
        return held["direction_accuracy"]
    scores = [v for k, v in held.items() if k.endswith("accuracy") and isinstance(v, (int, float))]
    return sum(scores) / len(scores) if scores else -1.0

print(max(sys.argv[2:], key=score))
PYEOF
)
        stamp "keeping the checkpoint of $keep"
    fi
    # the newest checkpoint of each run only (experts save every few hundred steps)
    for name in $keep; do
        [ -f "$RUNS/$name/latest" ] && dirs+=("$name/checkpoints/$(cat "$RUNS/$name/latest")")
    done
    local skip=(--exclude='optimizer.safetensors')
    [ "$KEEP_WEIGHTS" = ema ] && skip+=(--exclude='model.safetensors')
    [ ${#dirs[@]} -gt 0 ] && tar czf - -C "$RUNS" "${skip[@]}" "${dirs[@]}" \
        2>/dev/null | split -b 15M - "$OUT/weights.tgz.part-"
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
    read -r -a EVAL_ARGS <<<"${EVAL_CMD_ARGS:-}"
    VIDEO_STEPS=${VIDEO_STEPS:-6000}
    IMAGE_STEPS=${IMAGE_STEPS:-12000}  # the time budget may stop them first: the step reached is reported
fi
stamp "python: $($PY -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')"
$PY -m polydiff plugins | head -20

# 0. the video `full` preset's training speed (alone on the GPU: its timings are reported)
if [ "$SPEED" = 1 ]; then
    if [ "$SMOKE" = 1 ]; then
        SPEED_ARGS=(--smoke --modes eager compile-ro --out "$RUNS/gpu_speed-smoke.json")
    else
        # each compiled mode spends ~2 min compiling the video UNet: the first modes are the ones asked for
        read -r -a SPEED_ARGS <<<"${SPEED_CMD_ARGS:---modes eager compile-ro bf16 bf16-compile-ro compile --seconds 15}"
        SPEED_ARGS+=(--max-seconds $((SPEED_S - 150)) --out "$RUNS/gpu_speed-cuda.json")
    fi
    stamp "speed: ${SPEED_ARGS[*]}"
    timeout -s TERM "$SPEED_S" $PY bench/gpu_speed.py "${SPEED_ARGS[@]}" >"$LOG/gpu_speed.txt" 2>&1
    stamp "speed exit $?"; tail -14 "$LOG/gpu_speed.txt"
else
    stamp "speed skipped (SPEED=$SPEED)"
fi

# 1. peers (alone on the GPU: its timings are reported)
if [ "$PEERS" != 1 ]; then
    stamp "peers skipped (PEERS=$PEERS)"
elif [ "$SMOKE" = 1 ]; then
    PEERS_ARGS=(--device cpu --rounds 1 --train-steps 1 --forwards 1 --out "$RUNS/peers-smoke.json")
else
    PEERS_ARGS=(${PEERS_CMD_ARGS:---gpu --settings 32x32-b128 --max-seconds 110 --out $RUNS/peers-cuda.json})
fi
if [ "$PEERS" = 1 ]; then
    stamp "peers: ${PEERS_ARGS[*]}"
    timeout -s TERM "$PEERS_S" $PY bench/peers.py "${PEERS_ARGS[@]}" >"$LOG/peers.txt" 2>&1
    stamp "peers exit $?"; tail -30 "$LOG/peers.txt"
fi

# 2. the full presets, side by side
train() {  # name, then polydiff train arguments
    local name=$1; shift
    local preset_var="PRESET_${name//-/_}"
    # --foreground: the signal goes to the trainer alone, which saves and stops its DataLoader
    # workers; a plain `timeout` signals the whole process group, the workers die first and the
    # trainer fails before it can save (seen on the first GPU session).
    timeout --foreground -s TERM "$TRAIN_S" $PY -m polydiff train "$@" --preset "${!preset_var:-full}" \
        --device "$DEV" --no-progress \
        --out "$RUNS/$name" "${TRAIN_ARGS[@]}" >"$LOG/train-$name.txt" 2>&1
    echo "exit $?" >>"$LOG/train-$name.txt"
}
stamp "training: $MODELS"
for name in $MODELS; do
    extra_var="EXTRA_${name//-/_}"
    read -r -a extra <<<"${!extra_var:-}"
    case "${name%%-*}" in
        shapes) train "$name" image --dataset shapes ${IMAGE_STEPS:+--steps $IMAGE_STEPS} "${extra[@]}" & ;;
        digits) train "$name" image --dataset digits --encoder vae ${IMAGE_STEPS:+--steps $IMAGE_STEPS} "${extra[@]}" & ;;
        video) train "$name" video --steps "$VIDEO_STEPS" "${extra[@]}" & ;;
        *) echo "unknown model '$name': names start with shapes-, digits- or video-" >&2 ;;
    esac
done
wait
for name in $MODELS; do
    stamp "$name: $(tail -3 "$LOG/train-$name.txt" | tr '\n' ' ')"
    echo "  latest: $(cat "$RUNS/$name/latest" 2>/dev/null || echo none)"
done

# 3. evaluation and sampler quality, side by side
stamp "evaluating"
experts=" "
for name in $MODELS; do
    expert_var="EXPERT_${name//-/_}"
    [ -n "${!expert_var:-}" ] && experts+="${!expert_var} "
done
evaluate() {  # name, log name, then polydiff evaluate arguments
    local name=$1 log=$2; shift 2
    timeout -s TERM "$EVAL_S" $PY -m polydiff evaluate "$RUNS/$name" --device "$DEV" "${EVAL_ARGS[@]}" "$@" \
        >"$LOG/eval-$log.txt" 2>&1 &
}
for name in $MODELS; do
    [[ "$experts" == *" $name "* ]] && continue  # evaluated with the run it serves
    evaluate "$name" "$name"
    expert_var="EXPERT_${name//-/_}"
    for expert in ${!expert_var:-}; do
        evaluate "$name" "$name-with-$expert" --expert "$RUNS/$expert" --out "$RUNS/$name/eval-with-$expert"
    done
done
SQ="$RUNS/sampler_quality"; mkdir -p "$SQ"
for spec in "digits 40" "shapes 6"; do
    set -- $spec
    [[ " $MODELS " == *" $1-full "* ]] || continue
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
for f in "$LOG"/eval-*.txt "$LOG"/sampler_quality-*.txt; do [ -f "$f" ] && stamp "$f" && tail -4 "$f"; done
# one line per evaluation: the accuracies, seen / held-out (the device tool returns only the log's tail)
$PY - "$RUNS" <<'PYEOF'
import json, sys
from pathlib import Path

for path in sorted(Path(sys.argv[1]).glob("*/eval*/metrics.json")):
    metrics = json.loads(path.read_text())
    seen, held = metrics.get("seen", {}), metrics.get("held_out", {})
    # video: direction, colour, consistency; image/shapes: "all" checks at once; digits: one accuracy
    parts = [
        f"{key} {seen[key]:.2f} / {held[key]:.2f}"
        for key in ("direction_accuracy", "colour_accuracy", "temporal_consistency", "all")
        if all(isinstance(split.get(key), (int, float)) for split in (seen, held))
    ]
    if isinstance(metrics.get("accuracy"), (int, float)):
        parts.append(f"accuracy {metrics['accuracy']:.2f}")
    print(f"{path.parent.relative_to(sys.argv[1])}: {'; '.join(parts) or 'no accuracies'}")
PYEOF
stamp "done"
