#!/usr/bin/env bash
# Issue 28's whole comparison on a machine with a GPU: today's default and the new methods side by
# side, on the tile-6 protocol and on two random-image splits, two seeds each, every run given the
# same training budget in minutes (on a GPU the budget trains many more epochs than on 2 CPU
# cores: the figures say what the method reaches, not what 2 cores reach in that time), each map
# also made with --tta. Writes bench-maps-gpu.json and bench-maps-gpu.log beside where it is run.
#
#     bash bench/maps_gpu.sh [MINUTES]        # default 60; e.g. 10 for a quick pass
#     METHODS=default,pooled,fixmatch,mean-teacher bash bench/maps_gpu.sh 10
#
# It trains 3 splits x 2 seeds x the methods (default,fixmatch: 12 runs), each MINUTES, then maps:
# 12 hours at 60 minutes. Untested until a GPU is lent.
set -euo pipefail
minutes="${1:-60}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no GPU: torch.cuda.is_available() is False')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -m bench.maps --skip-speed --threads 8 \
    --methods "${METHODS:-default,fixmatch}" --splits tile6,random0,random1 --seeds 0,1 \
    --budget "$minutes" --budget-clock wall --tta --json bench-maps-gpu.json 2>&1 | tee bench-maps-gpu.log
