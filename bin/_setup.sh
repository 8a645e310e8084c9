# Sourced by bin/demo, bin/test and bin/bench: installs what regless needs, idempotently.
#   Debian packages: buildah skopeo docker-registry busybox-static openssl procps (apt-get, as root or through sudo),
#     and gcc python3-dev libxxhash-dev to build regless's C part (reglessbuild/csrc)
#     and qemu-user-static for RUN steps of foreign platforms (ensure_foreign registers it with binfmt_misc)
#     and tmux, the terminal tests/test_screen.py reads the screen of
#   .venv with regless and its test extras
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(buildah skopeo docker-registry busybox-static openssl procps gcc python3-dev libxxhash-dev qemu-user-static tmux)

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
     || [ -n "$(find "$ROOT/reglessbuild/csrc" -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    echo "regless setup: installing regless into .venv" >&2
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
    touch "$stamp"
  fi
  # bytecode for the editable install: where PYTHONDONTWRITEBYTECODE is set (as on these machines)
  # Python would otherwise compile every module on every run, about 60 ms of each `regless` call
  "$ROOT/.venv/bin/python" -m compileall -q "$ROOT/reglessbuild" >/dev/null
}

# Foreign platforms (issue 19): RUN steps of linux/arm64 images run here under qemu-user-static through
# binfmt_misc, and the tests build an arm64 base image from Debian's busybox-static:arm64. All of it needs
# root (the kernel's binfmt_misc, dpkg); without root it is skipped and the multi-platform build tests say
# what they lack. Failures here only warn: the rest of the suite does not need it.
ensure_foreign() {
  local arch; arch="$(dpkg --print-architecture)"
  [ "$arch" = amd64 ] || return 0   # the tests' foreign platform is arm64, seen from amd64
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "regless setup: not root: skipping qemu-user-static and binfmt_misc (multi-platform tests will skip)" >&2
    return 0
  fi
  local binfmt=/proc/sys/fs/binfmt_misc
  [ -e "$binfmt/register" ] || as_root mount -t binfmt_misc binfmt_misc "$binfmt" \
    || echo "regless setup: warning: could not mount binfmt_misc at $binfmt" >&2
  if [ -e "$binfmt/register" ] && [ ! -e "$binfmt/qemu-aarch64" ]; then
    as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf > $binfmt/register" \
      || echo "regless setup: warning: could not register qemu-aarch64 with binfmt_misc" >&2
  fi
  local bb="$ROOT/.venv/foreign/arm64/busybox"
  if [ ! -x "$bb" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      { as_root dpkg --add-architecture arm64 && as_root apt-get -o DPkg::Lock::Timeout=300 update -qq; } \
        || { echo "regless setup: warning: could not add the arm64 architecture to apt" >&2; return 0; }
    fi
    local tmp; tmp="$(mktemp -d)"
    if (cd "$tmp" && apt-get download -qq busybox-static:arm64 2>/dev/null && dpkg-deb -x busybox-static_*_arm64.deb x); then
      mkdir -p "$(dirname "$bb")" && cp "$tmp/x/bin/busybox" "$bb"
    else
      echo "regless setup: warning: could not fetch busybox-static:arm64" >&2
    fi
    rm -rf "$tmp"
  fi
}

setup_all() {
  ensure_packages
  ensure_venv
  ensure_foreign
  export PATH="$ROOT/.venv/bin:$PATH"
}
