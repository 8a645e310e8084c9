# Sourced by bin/demo, bin/test and bin/bench: installs what regless needs, idempotently.
#   Debian packages: buildah skopeo docker-registry busybox-static openssl procps (apt-get, as root or through sudo),
#     and gcc python3-dev libxxhash-dev to build regless's C part (reglessbuild/_native.c)
#   .venv with regless and its test extras
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(buildah skopeo docker-registry busybox-static openssl procps gcc python3-dev libxxhash-dev)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "regless setup: need root or sudo to run: $*" >&2; return 1; fi
}

ensure_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "regless setup: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local stamp="$ROOT/.venv/.installed"
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    python3 -m venv "$ROOT/.venv"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] \
     || [ "$ROOT/reglessbuild/_native.c" -nt "$stamp" ]; then
    echo "regless setup: installing regless into .venv" >&2
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
    touch "$stamp"
  fi
  # bytecode for the editable install: where PYTHONDONTWRITEBYTECODE is set (as on these machines)
  # Python would otherwise compile every module on every run, about 60 ms of each `regless` call
  "$ROOT/.venv/bin/python" -m compileall -q "$ROOT/reglessbuild" >/dev/null
}

setup_all() {
  ensure_packages
  ensure_venv
  export PATH="$ROOT/.venv/bin:$PATH"
}
