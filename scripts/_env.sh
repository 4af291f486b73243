# Shared set-up for scripts/*.sh: a virtual environment in ./.venv with senet installed (editable).
# senet_env [EXTRA]  — EXTRA is an optional-dependency group of pyproject.toml (e.g. "test").
senet_env() {
  local extra="${1:-}"
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
  local spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  # torch/torchvision are pinned in pyproject.toml; pip (not uv/poetry) finds them on the local disk.
  local stamp=".venv/.senet-installed-${extra:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install --quiet --disable-pip-version-check -e "$spec"
    python -c "import senet, torch"
    touch "$stamp"
  fi
}
