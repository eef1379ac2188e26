#!/usr/bin/env bash
# One-shot training on a lent accelerator, resumed from a CPU checkpoint (device time is short: one call).
#
# Here, before the call: put the CPU run's checkpoint where it travels, ignored by git:
#   mkdir -p .ckpt && cp checkpoints/diffusion.ckpt .ckpt/ && echo /.ckpt/ >> .git/info/exclude
# The call (the device tool's `run`, carry [".ckpt"]; its image has torch, numpy, grpcio, onnx, tqdm):
#   MODEL=diffusion STEPS=20000 MINUTES=8 tools/training/device_session.sh
# Back here: the checkpoint, weights and card come back under $OUT; copy the checkpoint to
# checkpoints/ and go on with `semcom train MODEL --resume` (or ship the weights and card).
#
# The run stops itself after MINUTES (SIGINT: it writes a checkpoint of every step done, and --resume
# continues it on any machine), so the call ends inside the device's per-call limit. Keep STEPS the
# CPU run's --steps: the learning-rate schedule is computed from it.
set -euo pipefail
MODEL=${MODEL:-diffusion}
STEPS=${STEPS:-20000}
MINUTES=${MINUTES:-8}
DEVICE=${DEVICE:-cuda}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-500}
OUT=${OUT:-$(mktemp -d)}
CHECKPOINTS=${CHECKPOINTS:-.ckpt}
repo=$(cd "$(dirname "$0")/../.." && pwd)

# The repository as the `semcom` package, without installing it (nothing can be fetched there).
package=$(mktemp -d)
ln -s "$repo" "$package/semcom"
export PYTHONPATH="$package${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'no cuda')"
[ -f "$CHECKPOINTS/$MODEL.ckpt" ] || echo "no $CHECKPOINTS/$MODEL.ckpt: starting $MODEL from scratch" >&2

status=0
timeout --signal=INT --kill-after=60 "$((MINUTES * 60))" python3 -m semcom.tools.cli train "$MODEL" --resume --device "$DEVICE" \
    --steps "$STEPS" --checkpoint-every "$CHECKPOINT_EVERY" --checkpoint-dir "$CHECKPOINTS" \
    --weights-dir "$OUT/weights" || status=$?
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null || true
# 124: stopped at the time limit, the checkpoint it wrote is what comes back.
if ! cp "$CHECKPOINTS/$MODEL.ckpt" "$OUT/"; then
    echo "no checkpoint came of the run (exit status $status)" >&2
    exit $(( status ? status : 1 ))
fi
ls -l "$OUT" "$OUT/weights" 2>/dev/null || true
exit $(( status == 124 ? 0 : status ))
