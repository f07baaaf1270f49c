#!/bin/sh
# The agent keeps the last X-Admin-Next-URI in --resume-file (new file,
# fsync, rename) and, restarted after a kill -9, resumes its dialog there
# with X-Admin-Resume: true: the server starts a fresh SCP03 session under
# the same dialog (and lease) and the rotation finishes at once, where a
# restarted agent without the file is refused (409) until the old dialog's
# step timeout (30 s here) frees the device. Twins: no file (refused), a
# file naming another device (ignored: it never touches that dialog).
set -u
S=${1:?usage: resume.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin rs

expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
    expect 0 "$S" ota device add --dir srv --id "$id" --master fleet:1 --kdf kdf3 --kvn 1
done
expect 0 "$S" ota campaign create --dir srv --name r2 --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
expect 0 server_start srv --step-timeout 30000 --lease 60000
agent() { # agent CARD [OPTIONS]
    _c=$1; shift
    "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card "$_c" --retries 0 "$@"
}
job() { "$S" ota campaign show --dir srv r2 --json | python3 -c \
    "import json,sys; print([x['state'] for x in json.load(sys.stdin)['devices'] if x['id']=='$1'][0])"; }

# dev1: killed (SIGKILL, fault point 3: the second script received, not run)
SCPKIT_OTA_FAULT=agent:3 agent dev1 --resume-file st1 >"$T/a1" 2>&1
[ $? -eq 137 ] && ok || bad "agent not killed"
[ -f st1 ] && [ ! -e st1.tmp ] && ok || bad "resume file"
[ "$(sed -n 1p st1)" = "$ID1" ] && ok || bad "resume file: device line"
sed -n 2p st1 | grep -Eq "^https://localhost:$PORT/server/adminagent\?d=[0-9A-F]{32}&s=2$" && ok ||
    bad "resume file: URI line $(sed -n 2p st1)"
# restarted with the file: resumes at once (well inside the 30 s step timeout)
t0=$(date +%s)
expect 0 agent dev1 --resume-file st1
t1=$(date +%s)
[ $((t1 - t0)) -lt 20 ] && ok || bad "resume took $((t1 - t0)) s"
has "$T/err" "resuming at the stored X-Admin-Next-URI"
[ ! -e st1 ] && ok || bad "resume file left after 204"
[ "$(job "$ID1")" = done ] && ok || bad "dev1 job $(job "$ID1")"
has srv/server.log "agent restarted: resumed without the script"
expect 0 "$S" apdu --card dev1 --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000
expect 3 "$S" apdu --card dev1 --keystore ks --master fleet:1 --kdf kdf3 80CA00E000

# dev2: the same kill; restarted without the file: refused, the old dialog holds it
SCPKIT_OTA_FAULT=agent:3 agent dev2 --resume-file st2 >"$T/a2" 2>&1
[ $? -eq 137 ] && ok || bad "agent 2 not killed"
expect 4 agent dev2
has "$T/err" "another session holds this device"
# another device's file is not used (dev1 must not post into dev2's dialog)
cp st2 other
expect 0 agent dev1 --resume-file other
has "$T/out" "0 scripts"
hasnt "$T/err" "resuming"
hasnt srv/server.log "X-Admin-From does not match"
# dev2 with its own file: resumes, finishes
expect 0 agent dev2 --resume-file st2
has "$T/err" "resuming at the stored X-Admin-Next-URI"
[ "$(job "$ID2")" = done ] && ok || bad "dev2 job $(job "$ID2")"
expect 0 "$S" apdu --card dev2 --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000
# a stale file (its dialog is over) costs nothing: a fresh start, 204
printf '%s\n%s\n' "$ID2" "https://localhost:$PORT/server/adminagent?d=00112233445566778899AABBCCDDEEFF&s=3" >st2
expect 0 agent dev2 --resume-file st2
has "$T/out" "0 scripts"
[ ! -e st2 ] && ok || bad "stale resume file left"
stop_pid $SRV_PID; SRV_PID=
hasnt srv/server.err "AddressSanitizer\|LeakSanitizer\|runtime error"
finish ota_resume
