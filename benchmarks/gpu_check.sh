#!/usr/bin/env bash
# The GPU check of issue 14, in at most 8 minutes on a machine with only torch, Python 3.12 and a GPU.
# Here (with network), from the project root:   bash ../shared/gpu/make_wheels.sh .whl
# There, from the project root:                  bash benchmarks/gpu_check.sh .whl
# Ray, Optuna and the rest come from the wheels; MNIST ships in data/raw. Figures and result files
# land in $OUT (default /tmp/gpu-check). SMOKE=1 shrinks every step (a CPU run of the script itself).
set -u
WHL=${1:-.whl}
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"; R=$OUT/results
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 RAY_DEDUP_LOGS=0
T0=$(date +%s); log() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; DEV=cuda; GPU=(--gpus-per-trial 0.125)
else
  echo "no GPU: the commands run on the CPU"; DEV=cpu; GPU=()
fi
nproc; python3 --version
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  log "install the wheels in $WHL"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl 2>&1 \
    | grep -v WARNING | tail -3
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 -c "import torch, ray, optuna; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ray', ray.__version__, 'optuna', optuna.__version__)" || exit 1
if [ "${SMOKE:-0}" = 1 ]; then
  BATCHES=256; CONC=1,2; CBATCH=1024; TRAIN=(--epochs 1 --subset 2000); GRID=(--epochs 1 --subset 2000); OPT=(--trials 2 --epochs 1 --subset 2000)
else
  BATCHES=16,64,256,1024; CONC=1,2,4,8; CBATCH=16; TRAIN=(); GRID=(); OPT=(--trials 50)
fi
log "epoch throughput per batch size: eager fp32, eager bf16, graphed, auto"
timeout 80 python3 -m benchmarks.gpu --batches $BATCHES --json "$OUT/throughput.json"
log "trials side by side (graphed, batch $CBATCH)"
timeout 50 python3 -m benchmarks.gpu --batches "" --concurrent $CONC --batch $CBATCH --json "$OUT/concurrent.json"
log "model.train defaults on $DEV"
timeout 35 python3 -m model.train --device $DEV --quiet --results-dir "$R" "${TRAIN[@]}" 2>&1 | tail -3
log "default grid, 8 trials per GPU"
timeout 95 python3 -m tuning.grid "${GPU[@]}" --name grid-gpu --results-dir "$R" --overwrite "${GRID[@]}" 2>&1 | grep -v "^trial-epochs:" | tail -12
log "default Optuna search, 50 trials, 8 per GPU"
timeout 170 python3 -m tuning.optuna "${GPU[@]}" --name optuna-gpu --results-dir "$R" --overwrite "${OPT[@]}" 2>&1 | grep -v "^trial-epochs:" | tail -12
log "done"
(cd "$R" 2>/dev/null && tar czf "$OUT/gpu-results.tgz" --exclude='tune*' --exclude='*.pt' --exclude=plots . 2>/dev/null)
ls -la "$OUT"
