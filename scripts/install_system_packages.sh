#!/usr/bin/env bash
# Installs the Debian packages that content parsing and its tests call as programs:
#   tesseract-ocr, tesseract-ocr-eng  local OCR (adapters/tesseract_ocr.py)
#   catdoc                            legacy .doc → text (parsing/documents.py)
#   fonts-dejavu-core                 the font tests render text images with
#   espeak-ng                         speaks the test audio the offline transcriber hears
#   ffmpeg                            video → its audio track, MP3/M4A/Ogg → WAV for speech
#
# Idempotent and quiet: does nothing when every package is already installed.
# Runs apt-get as root, through sudo otherwise. Two callers at once (make + a second make)
# wait for each other on a lock rather than racing dpkg.
# Exits non-zero on any failure. Not Debian (no dpkg/apt-get): says so and exits 0,
# and the tests that need a missing program skip.
set -euo pipefail

PACKAGES=(tesseract-ocr tesseract-ocr-eng catdoc fonts-dejavu-core espeak-ng ffmpeg)

say() { echo "install_system_packages: $*" >&2; }

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    say "not a Debian system; install by hand: ${PACKAGES[*]}"
    exit 0
fi

missing() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || echo "$pkg"
    done
}

# Lock a file that is always there (this script, read-only), so no stray lock is left.
exec 9<"${BASH_SOURCE[0]}"
flock 9

mapfile -t todo < <(missing)
[ "${#todo[@]}" -eq 0 ] && exit 0

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
say "installing ${todo[*]}"
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null
