#!/usr/bin/env bash
# packaging.DebInstall: the .deb as a user gets it. Builds it with cpack from
# the build tree, checks its contents, control fields and lintian's verdict,
# installs it with dpkg -i, verifies the installed units, runs the installed
# binaries (as the kalavara user, with the installed configs) through the
# README's curl commands, then removes and purges it and checks what is left.
# Usage: deb_install_test.sh BUILD_DIR VERSION
#
# Changes the machine (a package, a system user, /etc/kalavara), so: root
# only (exit 77, a skip, otherwise), one at a time (ctest RESOURCE_LOCK), and
# whatever happens the package is purged and a user the test made deleted
# (the EXIT trap). Skips when a kalavara package is on the machine already:
# that one is not the test's to replace. The daemons listen on ports the
# kernel picks, on 127.0.0.1 only, with their data in a temporary folder.
set -euo pipefail

build_dir=$1
version=$2
skip=77
user=kalavara

log() { echo "deb_install_test: $*"; }
fail() {
  echo "deb_install_test: FAILED: $*" >&2
  exit 1
}

if ((EUID != 0)); then
  log "skipped: needs root (dpkg -i, a system user)"
  exit "$skip"
fi
for tool in cpack dpkg dpkg-deb lintian curl setpriv systemd-analyze adduser deluser; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (scripts/install-deps.sh installs it)"
done
status=$(dpkg-query -W -f='${Status}' kalavara 2>/dev/null || true)
if [[ -n $status && $status != "unknown ok not-installed" ]]; then
  log "skipped: a kalavara package is on this machine already ($status); the test would replace it"
  exit "$skip"
fi

work=$(mktemp -d /tmp/kalavara-deb-test.XXXXXX)
installed=no
user_existed=no
if getent passwd "$user" >/dev/null; then user_existed=yes; fi
pids=()

cleanup() {
  local code=$?
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $installed == yes ]] && dpkg-query -W kalavara >/dev/null 2>&1; then
    dpkg -P kalavara >"$work/cleanup-purge.log" 2>&1 || {
      echo "deb_install_test: could not purge kalavara:" >&2
      cat "$work/cleanup-purge.log" >&2
      code=1
    }
  fi
  # deluser's output only on failure: it chats about a missing crontab.
  if [[ $user_existed == no ]] && getent passwd "$user" >/dev/null; then
    deluser --system "$user" >"$work/deluser.log" 2>&1 || {
      cat "$work/deluser.log" >&2
      code=1
    }
  fi
  if [[ $user_existed == no ]] && getent group "$user" >/dev/null; then
    delgroup --system --only-if-empty "$user" >"$work/delgroup.log" 2>&1 || {
      cat "$work/delgroup.log" >&2
      code=1
    }
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

# Prints FILE and fails.
fail_with_log() {
  local what=$1 file=$2
  echo "--- $file" >&2
  cat "$file" >&2 || true
  fail "$what"
}

# --- The package -----------------------------------------------------------

arch=$(dpkg --print-architecture)
deb=$work/pkg/kalavara_${version}_${arch}.deb
log "cpack -G DEB"
cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 ||
  fail_with_log "cpack" "$work/cpack.log"
[[ -f $deb ]] || fail_with_log "no $(basename "$deb") from cpack" "$work/cpack.log"

depends=$(dpkg-deb -f "$deb" Depends)
log "Depends: $depends"
for dep in adduser libc6 libstdc++6 librocksdb libspdlog libfmt libssl libxxhash; do
  [[ $depends == *"$dep"* ]] || fail "Depends lacks $dep"
done
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "Version is not $version"

dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's#^\./#/#' >"$work/contents"
for path in /usr/bin/kalavara-master /usr/bin/kalavara-volume \
  /lib/systemd/system/kalavara-master.service /lib/systemd/system/kalavara-volume@.service \
  /etc/kalavara/master.toml /etc/kalavara/volume-disk1.toml \
  /usr/share/doc/kalavara/copyright /usr/share/doc/kalavara/changelog.gz; do
  grep -qxF "$path" "$work/contents" || fail_with_log "the package lacks $path" "$work/contents"
done
# Only the daemons: no test, benchmark or fuzz binary.
bins=$(grep '^/usr/bin/.' "$work/contents" | sort | tr '\n' ' ')
[[ $bins == "/usr/bin/kalavara-master /usr/bin/kalavara-volume " ]] ||
  fail "unexpected binaries in the package: $bins"

dpkg-deb -e "$deb" "$work/control"
printf '/etc/kalavara/master.toml\n/etc/kalavara/volume-disk1.toml\n' >"$work/conffiles.want"
diff "$work/conffiles.want" "$work/control/conffiles" || fail "conffiles differ (above)"

log "lintian"
lintian_status=0
lintian --fail-on error "$deb" >"$work/lintian.log" 2>&1 || lintian_status=$?
sed 's/^/  /' "$work/lintian.log"
((lintian_status == 0)) || fail "lintian reports errors (exit $lintian_status)"

# --- Installed -------------------------------------------------------------

log "dpkg -i"
installed=yes
dpkg -i "$deb" </dev/null >"$work/install.log" 2>&1 || fail_with_log "dpkg -i" "$work/install.log"
[[ $(dpkg-query -W -f='${Status}' kalavara) == "install ok installed" ]] || fail "not installed"

# A system user (uid below 1000) with its own group, no login shell.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$user") || fail "no $user user"
((uid < 1000)) || fail "$user has uid $uid, not a system uid"
[[ $(getent group "$gid" | cut -d: -f1) == "$user" ]] || fail "$user's group is not $user"
[[ $shell == /usr/sbin/nologin ]] || fail "$user's shell is $shell"
[[ $home == /var/lib/kalavara ]] || fail "$user's home is $home"

conffiles=$(dpkg-query -W -f='${Conffiles}' kalavara)
for file in /etc/kalavara/master.toml /etc/kalavara/volume-disk1.toml; do
  [[ $conffiles == *"$file "* ]] || fail "$file is not a registered conffile: $conffiles"
done

# The installed units, unchanged, with the installed binaries.
verify=$(systemd-analyze verify --man=no /lib/systemd/system/kalavara-master.service \
  /lib/systemd/system/kalavara-volume@.service 2>&1) || fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify: $verify"

# --- Running ---------------------------------------------------------------

# The data in the test's folder, which the daemons (as kalavara) can reach.
chmod 711 "$work"
install -d -o "$user" -g "$user" -m 750 "$work/data" "$work/data/volume" "$work/data/index"

# Starts BINARY ARGS... as the kalavara user, its stderr in LOG; sets pid.
start_daemon() {
  local log_file=$1
  shift
  setpriv --reuid="$user" --regid="$user" --init-groups -- "$@" 2>"$log_file" &
  pid=$!
  pids+=("$pid")
}

# Waits up to 30 s for "NAME listening on 127.0.0.1:PORT" in LOG; sets port.
wait_listening() {
  local name=$1 log_file=$2 daemon_pid=$3 line
  for _ in $(seq 300); do
    line=$(grep -o "$name listening on 127\.0\.0\.1:[0-9]*" "$log_file" || true)
    if [[ -n $line ]]; then
      port=${line##*:}
      return 0
    fi
    kill -0 "$daemon_pid" 2>/dev/null || fail_with_log "$name exited before listening" "$log_file"
    sleep 0.1
  done
  fail_with_log "$name did not listen within 30 s" "$log_file"
}

log "starting the installed kalavara-volume and kalavara-master with the installed configs"
start_daemon "$work/volume.log" /usr/bin/kalavara-volume --config /etc/kalavara/volume-disk1.toml \
  -p 0 --bind 127.0.0.1 -d "$work/data/volume"
volume_pid=$pid
wait_listening kalavara-volume "$work/volume.log" "$volume_pid"
volume_port=$port
start_daemon "$work/master.log" /usr/bin/kalavara-master --config /etc/kalavara/master.toml \
  -p 0 --bind 127.0.0.1 -d "$work/data/index" -v "http://127.0.0.1:$volume_port"
master_pid=$pid
wait_listening kalavara-master "$work/master.log" "$master_pid"
master=http://127.0.0.1:$port
log "master at $master, volume at 127.0.0.1:$volume_port"

# The README's three commands, each answer checked.
curl_code() { curl -sS --max-time 10 -o "$work/body" -w '%{http_code}' "$@"; }
code=$(curl_code -L -X PUT -d value "$master/store/key") || fail "PUT: curl failed"
[[ $code == 201 ]] || fail "PUT: $code, not 201: $(cat "$work/body")"
code=$(curl_code -L "$master/store/key") || fail "GET: curl failed"
[[ $code == 200 && $(cat "$work/body") == value ]] || fail "GET: $code, $(cat "$work/body")"
# Stored by the volume, as the kalavara user.
[[ -n $(find "$work/data/volume" -type f -user "$user" | head -1) ]] ||
  fail "no file of $user's in the volume's data folder"
delete_code=$(curl_code -L -X DELETE "$master/store/key") || fail "DELETE: curl failed"
[[ $delete_code == 2* ]] || fail "DELETE: $delete_code: $(cat "$work/body")"
code=$(curl_code -L "$master/store/key") || fail "GET after DELETE: curl failed"
[[ $code == 404 ]] || fail "GET after DELETE: $code, not 404"
log "PUT 201, GET 200 \"value\", DELETE $delete_code, then GET 404"

# SIGTERM: both stop within 40 s, exit code 0.
for pid in "$master_pid" "$volume_pid"; do
  kill -TERM "$pid"
  for _ in $(seq 400); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "pid $pid still runs 40 s after SIGTERM"
  exit_code=0
  wait "$pid" || exit_code=$?
  ((exit_code == 0)) || fail "pid $pid exited $exit_code after SIGTERM"
done
pids=()

# --- Removed, reinstalled, purged -----------------------------------------

# An operator's edit of a conffile, which a remove and a reinstall keep.
echo "# edited by deb_install_test" >>/etc/kalavara/master.toml

log "dpkg -r"
dpkg -r kalavara </dev/null >"$work/remove.log" 2>&1 || fail_with_log "dpkg -r" "$work/remove.log"
[[ $(dpkg-query -W -f='${Status}' kalavara) == "deinstall ok config-files" ]] ||
  fail "after dpkg -r: $(dpkg-query -W -f='${Status}' kalavara)"
for path in /usr/bin/kalavara-master /usr/bin/kalavara-volume \
  /lib/systemd/system/kalavara-master.service /lib/systemd/system/kalavara-volume@.service \
  /usr/share/doc/kalavara; do
  [[ ! -e $path ]] || fail "$path is still there after dpkg -r"
done
[[ -f /etc/kalavara/master.toml && -f /etc/kalavara/volume-disk1.toml ]] ||
  fail "dpkg -r removed the conffiles"
getent passwd "$user" >/dev/null || fail "dpkg -r removed the $user user"

log "dpkg -i again"
dpkg -i "$deb" </dev/null >"$work/reinstall.log" 2>&1 || fail_with_log "dpkg -i (again)" "$work/reinstall.log"
grep -qx "# edited by deb_install_test" /etc/kalavara/master.toml ||
  fail "the reinstall replaced the edited /etc/kalavara/master.toml"
[[ $(id -u "$user") == "$uid" ]] || fail "the reinstall changed $user's uid"

log "dpkg -r; dpkg -P"
dpkg -r kalavara </dev/null >"$work/remove.log" 2>&1 || fail_with_log "dpkg -r (again)" "$work/remove.log"
dpkg -P kalavara </dev/null >"$work/purge.log" 2>&1 || fail_with_log "dpkg -P" "$work/purge.log"
status=$(dpkg-query -W -f='${Status}' kalavara 2>/dev/null || true)
[[ -z $status || $status == "unknown ok not-installed" ]] || fail "after dpkg -P: $status"
[[ ! -e /etc/kalavara ]] || fail "/etc/kalavara is still there after dpkg -P: $(ls -A /etc/kalavara)"
for path in /usr/bin/kalavara-master /lib/systemd/system/kalavara-master.service; do
  [[ ! -e $path ]] || fail "$path is still there after dpkg -P"
done
# Kept by design (packaging/deb/postrm): the user still owns the data.
getent passwd "$user" >/dev/null || fail "dpkg -P removed the $user user"
installed=no
log "passed (the package purged; the $user user, kept by the purge, is removed by the test" \
  "when it made it)"
