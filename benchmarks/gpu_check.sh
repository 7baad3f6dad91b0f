#!/usr/bin/env bash
# The GPU check in one call of at most 8 minutes (benchmarks/gpu_check.py): the gpu-marked
# tests, a bf16 CIFAR-sized fit against the bare loop, the default study on the GPU.
#   benchmarks/gpu_check.sh              # writes ${OUT:-.}/gpu_check.json
#   benchmarks/gpu_check.sh --dry-run    # the same parts on the CPU, tiny (CI, no GPU)
# Extra arguments go to `regimebench-bench --gpu` (a later --out wins). The parts have their
# own caps; this kills the whole at 470 s, and the JSON, rewritten after each part, keeps what
# finished. PY picks the interpreter (default: .venv/bin/python, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout -k 10 470 "$PY" -m benchmarks.bench --gpu --out "${OUT:-.}/gpu_check.json" "$@"
