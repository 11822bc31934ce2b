#!/usr/bin/env bash
# The fault suite in full (docs/reliability.md): every scenario for 20
# rounds, and a 10-minute soak. Tens of minutes. ctest runs the same tests
# shortened (3 rounds, a 20-second soak) as part of scripts/test.sh.
#
# Usage: scripts/fault-tests.sh [--rounds N] [--soak-seconds S] [--seed N] [gtest filter]
#   --rounds N        rounds of each scenario (default 20)
#   --soak-seconds S  length of the soak (default 600)
#   --seed N          replay the choices of a failed run (its output names the seed)
#   a filter          e.g. 'Faults.Master*': only those scenarios
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=20
soak=600
seed=
filter='*'
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --soak-seconds) soak=$2; shift ;;
    --seed) seed=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fault-tests: unknown option $1" >&2; exit 2 ;;
    *) filter=$1 ;;
  esac
  shift
done

bash scripts/build.sh
export KALAVARA_FAULT_ROUNDS=$rounds
export KALAVARA_FAULT_SOAK_SECONDS=$soak
if [[ -n $seed ]]; then export KALAVARA_FAULT_SEED=$seed; fi
echo "fault-tests: $rounds rounds per scenario, a ${soak} s soak${seed:+, seed $seed}"
exec build/bin/kalavara-fault-tests --gtest_filter="$filter"
