#!/usr/bin/env bash
# The Dragonfly GPU check, run from the source tree on a machine with its own torch and
# transformers and no network:  bash benchmarks/gpu_check.sh [--peak-tflops 989] [--quick]
# 1. the GPU-marked tests; 2. dragonfly_throughput.py --size full (random weights in the
# released architecture, bf16, SDPA) for both generations over batch sizes 1-32, each ratio
# and each crop level. --quick: batch sizes 1,8 and fewer samples (a first look in minutes).
# --tiny: the same steps at tiny size, for a CPU-only machine (the GPU tests then skip).
# Timing: the full run takes roughly 20 minutes on an H100/H200, --quick about 5.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MEDHARNESS_CACHE="${MEDHARNESS_CACHE:-$(mktemp -d)}"
PEAK=989 BATCHES=1,2,4,8,16,32 IMAGES=64 SIZE=full
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-tflops) PEAK="$2"; shift 2 ;;
    --quick) BATCHES=1,8 IMAGES=16; shift ;;
    --tiny) SIZE=tiny BATCHES=1,4 IMAGES=8; shift ;;
    *) echo "unknown option $1 (use --peak-tflops N, --quick, --tiny)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python}"
"$PY" - <<'PYEOF'
import torch, transformers
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE'}")
PYEOF
echo "== GPU-marked tests"
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/models/dragonfly
for GEN in 2 1; do
  echo "== throughput, generation $GEN, $SIZE size (peak $PEAK TFLOP/s)"
  "$PY" benchmarks/dragonfly_throughput.py --size "$SIZE" --generation "$GEN" --batch-sizes "$BATCHES" \
    --images "$IMAGES" --ratios none,0.25,0.5,1.0 --levels all,low,low+medium --warm 5 --peak-tflops "$PEAK"
done
