# Shared set-up for scripts/*.sh: a virtual environment with senet installed (editable).
# senet_env [EXTRA]  — EXTRA is an optional-dependency group of pyproject.toml (e.g. "test"); none: the base install.
# The environment is $SENET_VENV (default ./.venv). Each install leaves a stamp naming its extra and pyproject.toml's
# hash, so a base-only venv never passes for a test venv (the test extras get installed) and an edited
# pyproject.toml reinstalls. A test venv does hold the base install, so the quickstart run in it cannot show that an
# optional extra is missing: CI (.ci/run) runs the quickstart in a venv of its own with the base install only.
senet_env() {
  local extra="${1:-}"
  local py="${PYTHON:-python3}"
  local venv="${SENET_VENV:-.venv}"
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
  local spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  # torch/torchvision are pinned in pyproject.toml; pip (not uv/poetry) finds them on the local disk.
  local stamp="$venv/.senet-installed-${extra:-base}"
  local want
  want="$(python -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python -m pip install --quiet --disable-pip-version-check -e "$spec"
    python -c "import senet, torch"
    echo "$want" > "$stamp"
  fi
}
