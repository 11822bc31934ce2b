#!/usr/bin/env bash
# packaging.SystemdUnitsVerify: `systemd-analyze verify` finds nothing to say
# about packaging/systemd/*.service, and `systemd-analyze security` rates
# the exposure their sandbox leaves at most 2.0 (of 10; 0 is tightest, they
# are at 1.4 as these lines are written).
# Usage: verify_units.sh UNIT_DIR BIN_DIR
#   UNIT_DIR  packaging/systemd of the source tree
#   BIN_DIR   the build's bin/, holding kalavara-master and kalavara-volume
#
# verify checks that ExecStart names an executable, and the units name the
# installed /usr/bin/kalavara-*, which a build tree does not have. So the
# units are verified as copies whose ExecStart names the built binaries
# instead, and the test first checks that this is the only difference. (The
# package test, deb_install_test.sh, verifies the installed units unchanged.)
set -euo pipefail

unit_dir=$1
bin_dir=$2
# systemd-analyze shows exposure as 0.0-10.0 but takes --threshold in
# tenths (0-100).
max_exposure_tenths=20

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify_units: systemd-analyze not found (scripts/install-deps.sh installs systemd)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

units=(kalavara-master.service kalavara-volume@.service)
for unit in "${units[@]}"; do
  sed "s#^ExecStart=/usr/bin/\(kalavara-[a-z]*\)#ExecStart=$bin_dir/\1#" \
    "$unit_dir/$unit" >"$work/$unit"
  # Exactly one line changed, and it is ExecStart.
  changes=$(diff "$unit_dir/$unit" "$work/$unit" | grep '^[<>]' || true)
  if [[ $(grep -c '' <<<"$changes") != 2 ]] || ! grep -q "^> ExecStart=$bin_dir/" <<<"$changes"; then
    echo "verify_units: $unit: expected exactly one ExecStart=/usr/bin/kalavara-… line; changed:" >&2
    echo "$changes" >&2
    exit 1
  fi
done

# verify exits 0 on some findings (an unsafe setting, an unknown key in a
# section it knows): any output at all fails the test. --man=no: the
# Documentation= of the units is a file, not a man page.
status=0
output=$(cd "$work" && systemd-analyze verify --man=no "${units[@]/#/./}" 2>&1) || status=$?
if ((status != 0)) || [[ -n $output ]]; then
  echo "verify_units: systemd-analyze verify (exit $status):" >&2
  echo "$output" >&2
  exit 1
fi
echo "verify_units: systemd-analyze verify: no findings for ${units[*]}"

for unit in "${units[@]}"; do
  status=0
  report=$(cd "$work" && systemd-analyze security --offline=yes --threshold="$max_exposure_tenths" \
    "./$unit" 2>&1) || status=$?
  echo "verify_units: $(grep "Overall exposure level" <<<"$report")"
  if ((status != 0)); then
    echo "verify_units: $unit: exposure above $((max_exposure_tenths / 10)).$((max_exposure_tenths % 10)); the settings not in effect:" >&2
    echo "$report" | grep '✗' >&2 || echo "$report" >&2
    exit 1
  fi
done
