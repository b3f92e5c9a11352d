#!/usr/bin/env bash
# System packages reirrad needs beyond PyPI: headless Chromium (HTML -> PDF reports, and the
# report tests render pages in it), poppler-utils (pdftoppm/pdftotext for the PDF tests), the
# PostgreSQL server (the web tests run on it too: scripts/start-postgres.sh), dcmtk
# (storescu/storescp: the DICOM node's tests and benchmark use them as peers) and dicom3tools
# (dciodvfy: the tests check the RTDOSE objects reirrad writes against the DICOM IODs).
# Installs them with apt-get when missing; does nothing when they are there.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v storescp >/dev/null 2>&1 || missing+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "reirrad: please install ${missing[*]} (needed for PDF reports, the DICOM node tests and their benchmarks)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "Installing ${missing[*]} with apt-get ..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
