#!/bin/sh
# tests/lib.sh stop_pid: a process that has already exited but that its
# parent has not reaped (a zombie: a server's worker, a daemon's child)
# still answers kill -0; stop_pid must see it is gone at once instead of
# waiting the 10 s TERM grace. And a running child that ends on SIGTERM is
# stopped and reaped. The bounds leave room for a loaded machine (the old
# stop_pid took over 10 s on the zombie).
set -u
. "$(dirname "$0")/../lib.sh"
ms() { echo $(($(date +%s%N) / 1000000)); }
T=$(mktemp -d /tmp/scpkit-stoppid.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

# a grandchild that exits at once under a parent that never reaps it
sh -c 'sh -c "exit 0" & echo $! > "$1"; exec sleep 30' sh "$T/z" &
parent=$!
wait_for 15 test -s "$T/z" || bad "no grandchild pid"
z=$(cat "$T/z")
wait_for 15 sh -c "sed 's/.*) //' /proc/$z/stat | grep -q '^Z'" && ok || bad "grandchild $z never became a zombie"
pid_alive "$z" && bad "pid_alive says zombie $z runs" || ok
t0=$(ms); stop_pid "$z"; t1=$(ms)
[ $((t1 - t0)) -lt 5000 ] && ok || bad "stop_pid took $((t1 - t0)) ms on an exited process"
stop_pid "$parent"

# a child that ends on SIGTERM
sleep 30 &
r=$!
pid_alive "$r" && ok || bad "pid_alive says running child $r does not run"
t0=$(ms); stop_pid "$r"; t1=$(ms)
[ $((t1 - t0)) -lt 8000 ] && ok || bad "stop_pid took $((t1 - t0)) ms on a child that ends on TERM"
kill -0 "$r" 2>/dev/null && bad "child $r still there after stop_pid" || ok
finish lib_stop_pid
