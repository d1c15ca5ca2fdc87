#!/usr/bin/env bash
# make-board.sh NAME build|start|stop|status|shell [CMD...]
#
# An emulated arm64 "board": a Debian arm64 root file system (debootstrap) run on this x86
# machine by qemu-user-static through binfmt, with the device extra's real aarch64 wheels in
# venvs under /opt/edgekit and an OpenSSH server *inside* the emulated userland on 127.0.0.1:PORT,
# so `ssh`/`scp` reach an aarch64 machine exactly as they reach a real board. Why: edge/ must run
# on the Python, glibc and wheels of Jetson/Pi/Coral boards, and none can be had here.
#
# Boards (recipes below): bookworm-arm64 (Debian 12, Python 3.11, ai-edge-litert) and
# bullseye-arm64 (Debian 11, Python 3.9, the last cp39 ai-edge-litert + a tflite-runtime venv).
# Latency under emulation means nothing; correctness, installability and the remote flow do.
#
# Cache: $EDGEKIT_BOARDS (default /var/cache/edgekit-boards)/NAME holds root/ (the rootfs),
# client_key (the ssh identity), known_hosts, cpuinfo, stamps, and x86-VENV: an x86 "twin" venv
# (this machine's python3) with the same interpreter pins, the parity tests' reference (an ARM
# vs x86 difference must not be confused with a difference between interpreter versions). `build` redoes a stage only
# when its stamp is missing or the recipe of that stage changed. Needs root, debootstrap,
# qemu-user-static, binfmt-support (apt-get install debootstrap qemu-user-static binfmt-support).
# Every step runs under `timeout`; a failing step prints its own output and the script exits 1.
set -euo pipefail

NAME="${1:-}"; ACTION="${2:-}"
CACHE="${EDGEKIT_BOARDS:-/var/cache/edgekit-boards}"
MIRROR="${EDGEKIT_BOARD_MIRROR:-http://deb.debian.org/debian}"
# qemu's default CPU model (max) emulates SME and gave wrong int8 results; pin a real core.
export QEMU_CPU="${EDGEKIT_QEMU_CPU:-cortex-a76}"
BASE_PKGS="numpy opencv-python-headless click"

case "$NAME" in
  bookworm-arm64)
    SUITE=bookworm; PORT=22012
    # venv name | pip requirements (pinned: these are the versions the README's table reports)
    # x86 twins: the venvs whose pins also exist as cp3X x86_64 wheels for this machine's python3
    TWINS=(litert)
    # onnxruntime 1.32.0 (cp311 manylinux_2_28_aarch64) beside LiteRT: the onnxruntime backend
    # runs the ONNX frame model, and the head stays on LiteRT, so both live in one venv
    VENVS=("litert|ai-edge-litert==2.3.0 numpy==2.2.6 opencv-python-headless==4.12.0.88 click==8.1.8 onnxruntime==1.32.0")
    ;;
  bullseye-arm64)
    SUITE=bullseye; PORT=22011
    # ai-edge-litert 2.1.0 is the last cp39 aarch64 wheel; tflite-runtime 2.14 needs glibc 2.34
    # (Debian 11 has 2.31), so 2.13, which needs numpy < 2 (and an OpenCV built against it).
    # onnxruntime 1.19.2 is the last cp39 aarch64 wheel (manylinux_2_27; the first with numpy 2)
    TWINS=(litert)  # tflite-runtime 2.13 has no wheel for this machine's Python 3.11
    VENVS=("litert|ai-edge-litert==2.1.0 numpy==2.0.2 opencv-python-headless==4.12.0.88 click==8.1.8 tomli==2.2.1 onnxruntime==1.19.2"
           "tflite|tflite-runtime==2.13.0 numpy==1.26.4 opencv-python-headless==4.11.0.86 click==8.1.8 tomli==2.2.1")
    ;;
  *) echo "usage: $0 bookworm-arm64|bullseye-arm64 build|start|stop|status|shell [CMD...]" >&2
     exit 2 ;;
esac
DIR="$CACHE/$NAME"; ROOT="$DIR/root"
ROOTFS_RECIPE="$SUITE arm64 minbase python3 python3-venv openssh-server $MIRROR"

die() { echo "make-board $NAME: $*" >&2; exit 1; }

# step TIMEOUT WHAT CMD...: run CMD under a timeout, its output to a log that is printed on failure
step() {
  local limit="$1" what="$2"; shift 2
  local log="$DIR/last-step.log"
  echo "make-board $NAME: $what" >&2
  if ! timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$what failed (or ran past ${limit}s); full log: $log"
  fi
}

# a command inside the board, with a clean environment (what a login on a board would have)
in_board() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
             LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU" "$@"; }
export -f in_board
export ROOT QEMU_CPU

stamp_ok() { [ -f "$DIR/$1.stamp" ] && [ "$(cat "$DIR/$1.stamp")" = "$2" ]; }

need_binfmt() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
  command -v debootstrap >/dev/null && [ -x /usr/bin/qemu-aarch64-static ] || \
    die "needs debootstrap and qemu-user-static: apt-get install debootstrap qemu-user-static binfmt-support"
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    # two boards built at once race to mount it: "already mounted" by the other is fine
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || \
      [ -e /proc/sys/fs/binfmt_misc/register ] || die "cannot mount binfmt_misc"
  fi
  # the same race one step later: "File exists" when the other build registered it first
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || \
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || \
    die "cannot register qemu-aarch64 with binfmt (update-binfmts --enable qemu-aarch64)"
}

# An ARM /proc/cpuinfo: qemu 7.2 passes the host's x86 one through, and XNNPACK's cpuinfo then
# crashed in allocate_tensors. Four Cortex-A76 cores (Pi 5), the features of that core.
write_cpuinfo() {
  local n
  : >"$DIR/cpuinfo"
  for n in 0 1 2 3; do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$n" >>"$DIR/cpuinfo"
  done
}

# pip inside the board reaches the index the way this machine does: its CA bundle and timeout.
write_pip_config() {
  local bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
  mkdir -p "$ROOT/etc/ssl/certs"
  cp "$bundle" "$ROOT/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = %s\ndisable-pip-version-check = true\n' \
    "${PIP_DEFAULT_TIMEOUT:-180}" >"$ROOT/etc/pip.conf"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

build_rootfs() {
  stamp_ok rootfs "$ROOTFS_RECIPE" && return 0
  stop_board 2>/dev/null || true
  rm -rf "$ROOT" "$DIR"/*.stamp; mkdir -p "$ROOT"
  step 1200 "debootstrap $SUITE arm64 (first stage)" debootstrap --foreign --arch=arm64 \
    --variant=minbase --include=python3,python3-venv,openssh-server "$SUITE" "$ROOT" "$MIRROR"
  # no service starts inside the chroot while packages are configured (sshd would take port 22)
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
  step 2400 "debootstrap second stage (emulated)" in_board /debootstrap/debootstrap --second-stage
  rm -rf "$ROOT/var/cache/apt/archives/"*.deb
  echo "$ROOTFS_RECIPE" >"$DIR/rootfs.stamp"
}

build_venvs() {
  local spec name reqs
  write_pip_config
  for spec in "${VENVS[@]}"; do
    name="${spec%%|*}"; reqs="${spec#*|}"
    stamp_ok "venv-$name" "$reqs" && continue
    rm -rf "$ROOT/opt/edgekit/$name"
    step 900 "venv /opt/edgekit/$name" in_board python3 -m venv "/opt/edgekit/$name"
    step 900 "pip upgrade in $name" in_board "/opt/edgekit/$name/bin/python" -m pip install -q \
      --upgrade pip
    # shellcheck disable=SC2086
    step 1800 "pip install $reqs" in_board "/opt/edgekit/$name/bin/python" -m pip install -q \
      --only-binary=:all: $reqs
    echo "$reqs" >"$DIR/venv-$name.stamp"
  done
}

build_twins() {
  local spec name reqs twin
  for spec in "${VENVS[@]}"; do
    name="${spec%%|*}"; reqs="${spec#*|}"
    for twin in "${TWINS[@]}"; do
      [ "$twin" = "$name" ] || continue
      stamp_ok "x86-$name" "$(python3 -V) $reqs" && continue
      rm -rf "$DIR/x86-$name"
      step 300 "x86 twin venv x86-$name" python3 -m venv "$DIR/x86-$name"
      # shellcheck disable=SC2086
      step 1200 "x86 twin pip install $reqs" "$DIR/x86-$name/bin/python" -m pip install -q \
        --only-binary=:all: $reqs
      echo "$(python3 -V) $reqs" >"$DIR/x86-$name.stamp"
    done
  done
}

build_ssh() {
  local recipe="ed25519 port=$PORT"
  stamp_ok ssh "$recipe" && [ -f "$DIR/client_key" ] && return 0
  mkdir -p "$ROOT/etc/edgekit-board"; rm -f "$DIR/client_key"*
  rm -f "$ROOT/etc/edgekit-board/host_key"*
  step 600 "host key" in_board ssh-keygen -q -t ed25519 -N "" -f /etc/edgekit-board/host_key
  step 60 "client key" ssh-keygen -q -t ed25519 -N "" -C "edgekit-board-$NAME" -f "$DIR/client_key"
  install -m 600 "$DIR/client_key.pub" "$ROOT/etc/edgekit-board/authorized_keys"
  # sshd gives sessions a clean environment: ~/.ssh/environment carries the CPU pin into them
  mkdir -p "$ROOT/root/.ssh"; echo "QEMU_CPU=$QEMU_CPU" >"$ROOT/root/.ssh/environment"
  cat >"$ROOT/etc/edgekit-board/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey /etc/edgekit-board/host_key
PidFile /run/edgekit-sshd.pid
AuthorizedKeysFile /etc/edgekit-board/authorized_keys
PermitRootLogin yes
PermitUserEnvironment yes
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$ROOT/etc/edgekit-board/host_key.pub")" \
    >"$DIR/known_hosts"
  echo "$recipe" >"$DIR/ssh.stamp"
}

mount_board() {
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/proc/cpuinfo" || mount --bind "$DIR/cpuinfo" "$ROOT/proc/cpuinfo"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  mountpoint -q "$ROOT/sys" || mount --bind /sys "$ROOT/sys"
  mkdir -p "$ROOT/run/sshd" "$ROOT/tmp"; chmod 1777 "$ROOT/tmp"
}

umount_board() {
  local m
  for m in sys dev proc/cpuinfo proc; do
    if mountpoint -q "$ROOT/$m"; then umount "$ROOT/$m" || umount -l "$ROOT/$m"; fi
  done
}

port_open() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 3 <&3" 2>/dev/null \
              | grep -q SSH; }

start_board() {
  [ -f "$DIR/ssh.stamp" ] || die "not built; run: $0 $NAME build"
  write_cpuinfo
  mount_board
  port_open && return 0
  setsid chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    QEMU_CPU="$QEMU_CPU" /usr/sbin/sshd -D -e -f /etc/edgekit-board/sshd_config \
    >"$DIR/sshd.log" 2>&1 </dev/null &
  echo $! >"$DIR/sshd.pid"
  local i
  for i in $(seq 1 120); do
    port_open && return 0
    kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null || break
    sleep 1
  done
  cat "$DIR/sshd.log" >&2
  die "sshd inside the board did not answer on 127.0.0.1:$PORT"
}

stop_board() {
  if [ -f "$DIR/sshd.pid" ]; then
    kill "$(cat "$DIR/sshd.pid")" 2>/dev/null || true
    rm -f "$DIR/sshd.pid"
  fi
  if [ -f "$ROOT/run/edgekit-sshd.pid" ]; then
    kill "$(cat "$ROOT/run/edgekit-sshd.pid")" 2>/dev/null || true
    rm -f "$ROOT/run/edgekit-sshd.pid"
  fi
  umount_board
}

case "$ACTION" in
  build) need_binfmt; mkdir -p "$DIR"; running=no; port_open && running=yes
         build_rootfs; write_cpuinfo; mount_board; build_venvs; build_ssh
         [ "$running" = yes ] || umount_board  # a running board keeps its mounts
         build_twins; echo "make-board $NAME: built in $ROOT" >&2 ;;
  start) need_binfmt; start_board
         echo "ssh -i $DIR/client_key -o UserKnownHostsFile=$DIR/known_hosts -p $PORT root@127.0.0.1" ;;
  stop) stop_board ;;
  status) port_open && echo "running on 127.0.0.1:$PORT" || { echo "stopped"; exit 3; } ;;
  shell) need_binfmt; write_cpuinfo; mount_board; shift 2; in_board "${@:-/bin/bash}" ;;
  *) die "unknown action '$ACTION'; use build|start|stop|status|shell" ;;
esac
