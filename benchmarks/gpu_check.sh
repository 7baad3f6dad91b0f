#!/usr/bin/env bash
# The GPU check in one call of at most 8 minutes (benchmarks/gpu_check.py): the gpu-marked
# tests, a bf16 CIFAR-sized fit against the bare loop, the default study on the GPU.
#   benchmarks/gpu_check.sh              # writes ${OUT:-.}/gpu_check.json and gpu_check.log
#   benchmarks/gpu_check.sh --dry-run    # the same parts on the CPU, tiny (CI, no GPU)
#   benchmarks/gpu_check.sh --pack       # here, before a GPU is lent: fill .gpu_site/ (below)
# Extra arguments go to `regimebench-bench --gpu` (a later --out wins). The parts have their
# own caps; this kills the whole at 470 s, and the JSON, rewritten after each part, keeps what
# finished. PY picks the interpreter (default: .venv/bin/python, else python3).
#
# The lent GPU machines' image has torch, Lightning, timm, torchmetrics, scikit-learn, pandas
# and matplotlib, but not Hydra and OmegaConf, and no network. `--pack` copies those pure-Python
# packages (hydra, omegaconf, antlr4, the joblib/submitit launcher plugins, submitit) from this
# machine's venv into .gpu_site/ (git-ignored, about 5 MB); carry it (carry: [".gpu_site"]) and
# this script puts it on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = "--pack" ]; then
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -rf .gpu_site && mkdir .gpu_site || exit 1
  for pkg in hydra omegaconf antlr4 hydra_plugins submitit; do
    cp -r "$site/$pkg" .gpu_site/ || exit 1
  done
  find .gpu_site -name __pycache__ -prune -exec rm -rf {} +
  du -sh .gpu_site
  exit 0
fi
# Absolute: the study's child processes run in a temporary folder.
[ -d .gpu_site ] && export PYTHONPATH="$PWD/.gpu_site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
out="${OUT:-.}"
timeout -k 10 470 "$PY" -m benchmarks.bench --gpu --out "$out/gpu_check.json" "$@" 2>&1 |
  tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
