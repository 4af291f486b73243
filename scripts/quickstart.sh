#!/usr/bin/env bash
# Train resnet20 and se_resnet20 on CIFAR-10 with a CPU-minutes recipe, evaluate both, print their test accuracies.
# Usage: scripts/quickstart.sh [extra `senet train` flags...]     e.g. scripts/quickstart.sh --epochs 4
# Data: $SENET_DATA_DIR (a folder holding cifar10-jpeg.tar.gz, an ImageFolder tree or CIFAR pickles), default
# ../shared/data beside the repository; set SENET_QUICKSTART_DOWNLOAD=1 to fetch CIFAR-10 through torchvision.
# Budget: SENET_QUICKSTART_BUDGET=tiny trains on 512 images for 1 epoch (a smoke test of the same code path, used by
# CI; accuracy near chance); unset or "full" is configs/cifar10_quick.yaml as is.
# Needs only the base install: the curves plot is skipped with a one-line note when matplotlib is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=()
case "${SENET_QUICKSTART_BUDGET:-full}" in
  full) ;;
  tiny) budget=(--train-subset 512 --epochs 1) ;;
  *) echo "quickstart: SENET_QUICKSTART_BUDGET must be tiny or full, not '${SENET_QUICKSTART_BUDGET}'" >&2; exit 2 ;;
esac
source scripts/_env.sh
senet_env
# On a shared or busy CPU, OpenMP threads that spin-wait for each other lose ~3x; passive waiting costs little when
# the machine is idle (measured in docs/training.md).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
out="${SENET_QUICKSTART_DIR:-runs/quickstart}"
extra=()
[ "${SENET_QUICKSTART_DOWNLOAD:-0}" = "1" ] && extra+=(--download)
start=$(date +%s)
for model in resnet20 se_resnet20; do
  if grep -qs '"status": "done"' "$out/$model/result.json" && [ -z "${SENET_QUICKSTART_FRESH:-}" ]; then
    echo "== $model: already trained in $out/$model (set SENET_QUICKSTART_FRESH=1 or delete it to retrain)"
    continue
  fi
  rm -rf "$out/$model"
  echo "== training $model (configs/cifar10_quick.yaml${budget[*]:+, budget ${SENET_QUICKSTART_BUDGET}: ${budget[*]}}) -> $out/$model"
  senet train --model "$model" --config configs/cifar10_quick.yaml --seed 0 --output "$out/$model" \
    ${budget[@]+"${budget[@]}"} ${extra[@]+"${extra[@]}"} "$@"
done
echo "== results"
senet compare "$out/resnet20" "$out/se_resnet20" --plot "$out/curves.png" | sed '$d'
python - "$out" "$start" <<'PY'
import json, sys, time
out, start = sys.argv[1], int(sys.argv[2])
r = {m: json.load(open(f"{out}/{m}/result.json")) for m in ("resnet20", "se_resnet20")}
a, b = r["resnet20"]["top1"], r["se_resnet20"]["top1"]
print(f"CIFAR-10 test accuracy: resnet20 {a:.2f}%  |  se_resnet20 {b:.2f}%  (SE {b - a:+.2f} points); "
      f"quickstart wall time {time.time() - start:.0f} s")
print(json.dumps({"resnet20_top1": a, "se_resnet20_top1": b, "wall_time_s": round(time.time() - start, 1)}))
PY
