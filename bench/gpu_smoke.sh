#!/usr/bin/env bash
# GPU smoke test and throughput of both deep models, for a lent GPU machine (or any CUDA box):
#   bash bench/gpu_smoke.sh            # results also written to $OUT (or bench/_work) as JSON
# Needs torch with CUDA, transformers, safetensors and peft in the Python it runs (python3 or $PYTHON);
# downloads nothing (random weights, synthetic data).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DEST=${OUT:-bench/_work}
mkdir -p "$DEST"
export PYTHONPATH=src HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
echo "== DINOv2 ViT-S/14 multi-task: 300 full fine-tuning steps + inference, batch 64, bf16, 224 and 448 px"
"$PYTHON" bench/gpu_dinov2.py --steps 300 --batch 64 --size 224 --json "$DEST/gpu_dinov2_224.json"
"$PYTHON" bench/gpu_dinov2.py --steps 100 --batch 64 --size 448 --json "$DEST/gpu_dinov2_448.json"
if [ -f bench/gpu_vlm.py ]; then
  echo "== SmolVLM-256M architecture + LoRA: short fine-tune, bf16"
  "$PYTHON" bench/gpu_vlm.py --json "$DEST/gpu_vlm.json"
fi
