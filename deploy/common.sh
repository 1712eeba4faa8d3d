# Shared by deploy/run.sh and deploy/test.sh: install missing Debian packages, configure, build.
# Sourced, not run. Expects ROOT (the repository) to be set.

# Installs every package of deploy/packages.txt that is not installed yet. Quiet and fast when
# all are present (one dpkg-query); otherwise apt-get update once, then install.
tandem_install_packages() {
  local wanted missing=()
  mapfile -t wanted < <(grep -v '^\s*#' "$ROOT/deploy/packages.txt" | grep -v '^\s*$')
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "tandem: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# tandem_build BUILD_DIR [cmake args...]: configures (once) and builds everything with 2 jobs.
tandem_build() {
  local dir="$1"
  shift
  cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
