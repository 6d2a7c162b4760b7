# Shared by the get-*.sh scripts: installs Debian packages with apt-get (via sudo unless root).
# Usage: source this file, then `apt_install PACKAGE...`.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q "$@"
}
