#!/usr/bin/env bash
# The speed benches on a CUDA machine, small sizes, < 10 minutes in all; results land in $OUT.
# Then a class bundle prepared on the GPU (its bf16/fp16 training) is imported and used on the CPU side
# (fp32, the GPU hidden): bench/bundle_check.py says whether every part arrived and gives the same numbers.
#
#   bench/gpu_check.sh            # on a GPU machine (fails fast when torch sees no CUDA device)
#   bench/gpu_check.sh --dry-run  # the same steps on the CPU with tiny sizes (bf16 forced where the GPU would
#                                 # choose it), to check the script
#
# PY names the interpreter (default .venv/bin/python, else python3); OUT the results folder
# (default bench/out). Each step has its own timeout, so one slow step cannot eat the others' time;
# summary.txt collects the ratio lines of every step.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$OUT"

if [ "${1:-}" = "--dry-run" ]; then
  export CUDA_VISIBLE_DEVICES=""
  DEVICE=cpu; REPEATS=3; IMAGES=74; SIZE=64; BS=16; SLACK=5  # a CPU is slower: longer limits
  PREP_PRECISION=bf16  # the preparing half trains as a GPU would (PETLAB_PRECISION)
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "torch sees no CUDA device: run with --dry-run to check the script on a CPU" | tee "$OUT/summary.txt"
    exit 1
  }
  DEVICE=cuda; REPEATS=30; IMAGES=740; SIZE=224; BS=64; SLACK=1
  PREP_PRECISION=auto  # the GPU's own rule: bf16 where supported, else fp16
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" > "$OUT/env.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$((limit * SLACK))" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "== $name: exit $rc, $((SECONDS - start)) s" >> "$OUT/summary.txt"
  grep -E "x  \(goal|x \(goal|goal|fast path|precision|error|^FAIL|bundle check" "$OUT/$name.txt" \
    | grep -v -i warn >> "$OUT/summary.txt"
}

: > "$OUT/summary.txt"
step test_inference 90 "$PY" -m pytest tests/core/nets/test_inference.py -q -p no:cacheprovider
step predict_speed 60 "$PY" -m bench.predict_speed --device "$DEVICE" --repeats "$REPEATS"
step train_speed 120 "$PY" -m bench.train_speed --quick
step lesson_time 180 "$PY" -m bench.lesson_time --images "$IMAGES" --size "$SIZE" --bs "$BS"
rm -rf "$OUT/bundle"
step bundle_prepare 120 env PETLAB_PRECISION="$PREP_PRECISION" "$PY" -m bench.bundle_check prepare --out "$OUT/bundle"
step bundle_check 120 env CUDA_VISIBLE_DEVICES= PETLAB_PRECISION=fp32 "$PY" -m bench.bundle_check check \
  "$OUT/bundle/petlab-class.tar" --data "$OUT/bundle/classroom"
cat "$OUT/summary.txt"
