#!/bin/sh
# The campaign status page (issue 15 item 5) from a server running a real
# campaign: a key rotation over three virtual devices, two of them rotated
# by the agent, the third's session ended by a hostile agent whose
# X-Admin-Script-Status carries markup (a real path from the network into
# a failure reason), and a fourth device whose id is markup (registered by
# `ota device add`) and whose job the registry records as failed with a
# reason that is markup too. Checks:
#   - GET /campaign/r2.json, ?format=json and `ota campaign show --json`
#     give the same data (one builder), numbers as expected;
#   - headless chromium renders /campaign/r2: the screenshot is a non-blank
#     PNG of the window size with the plot's and bars' colours, and the
#     rendered DOM (--dump-dom) shows the --json numbers and failures;
#   - hostile twin: every registry string comes out as text (escaped in the
#     HTML source, equal to the raw string in the DOM, no <script> element);
#   - the index lists both campaigns; unknown campaign, NUL in the name and
#     other paths are 404; the page is bounded and carries a CSP.
set -u
S=${1:?usage: status.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
CHECK="python3 $HERE/status_page.py"
ota_begin st
command -v chromium >/dev/null || { echo "chromium missing: scripts/deps.sh" >&2; exit 1; }

# shoot URL PNG W H / dom URL OUT: headless chromium, bounded, own profile
chrome() {
    timeout -s KILL 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/chrome" --hide-scrollbars "$@" 2>>"$T/chrome.err"
}

expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2 3; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
    expect 0 "$S" ota device add --dir srv --id "$id" --master fleet:1 --kdf kdf3 --kvn 1
done
EVIL='<script>alert("id")</script>'"'"'&x'
expect 0 "$S" ota device add --dir srv --id "$EVIL" --master fleet:1 --kdf kdf3 --kvn 1
expect 0 "$S" ota campaign create --dir srv --name r2 --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
expect 0 "$S" ota campaign create --dir srv --name 'pd "<b>"' --target "list:$ID1" --put-data 0101=0102
expect 0 server_start srv
U="https://localhost:$PORT/server/adminagent"
A="http://127.0.0.1:$ADMIN"

# before any session: the page exists, nothing done, no failures
curl -sS --max-time 10 -o "$T/p0.json" "$A/campaign/r2.json" && ok || bad "json before"
json "$T/p0.json" "d['total'] == 4 and d['pending'] == 4 and d['done'] == 0 and d['progress'] == [] and d['failures'] == []"

expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1
sleep 1.2   # the plot shows time: the second device ends later
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev2
# a hostile agent for device 3: opens a dialog, then reports markup as its script status
P="X-Admin-Protocol: globalplatform-remote-admin/1.0"
curl -sS --cacert srv/tls/cert.pem --max-time 10 -D "$T/h1.h" -o "$T/h1.b" -X POST \
    -H "$P" -H "X-Admin-From: //se-id/id/$ID3" "$U" >/dev/null 2>&1
NEXT=$(sed -n 's/^X-Admin-Next-URI: *\([^\r]*\).*/\1/Ip' "$T/h1.h")
[ -n "$NEXT" ] && ok || bad "no dialog for device 3"
curl -sS --cacert srv/tls/cert.pem --max-time 10 -o /dev/null -w '%{http_code}' -X POST \
    -H "$P" -H "X-Admin-From: //se-id/id/$ID3" \
    -H 'X-Admin-Script-Status: <img src=x onerror=alert(1)>"q' \
    "https://localhost:$PORT$NEXT" >"$T/h2.c" 2>/dev/null
[ "$(cat "$T/h2.c")" = 409 ] && ok || bad "hostile status: HTTP $(cat "$T/h2.c")"
# the registry holds a failed job for the device whose id is markup
reg_sql srv "UPDATE job SET state='failed', attempts=1,
    reason='<script>alert(\"reason\")</script> & '' \"', updated=$(date +%s%3N)
    WHERE device='$(printf %s "$EVIL" | sed "s/'/''/g")'" && ok || bad "reg_sql"

# --- the same data three ways
curl -sS --max-time 10 -o "$T/st.json" "$A/campaign/r2.json" && ok || bad "GET .json"
curl -sS --max-time 10 -o "$T/st2.json" "$A/campaign/r2?format=json" && ok || bad "GET ?format=json"
expect 0 "$S" ota campaign show --dir srv r2 --json
cp "$T/out" "$T/cli.json"
python3 - "$T/st.json" "$T/st2.json" "$T/cli.json" <<'EOF' && ok || bad "the three JSON views differ"
import json, sys
a, b, c = (json.load(open(p)) for p in sys.argv[1:])
strip = lambda d: {k: v for k, v in d.items() if k not in ("generated", "generated_ms", "devices", "ok", "command")}
sa, sb, sc = strip(a), strip(b), strip(c)
assert sa == sb, (sa, sb)
missing = [k for k in sa if sc.get(k) != sa[k]]
assert not missing, missing
assert len(c["devices"]) == 4
EOF
json "$T/st.json" "d['total'] == 4 and d['done'] == 2 and d['failed'] == 1 and d['pending'] == 1 and d['running'] == 0"
json "$T/st.json" "[p['done'] for p in d['progress']] == [1, 2, 2] and d['progress'][-1]['failed'] == 1"
json "$T/st.json" "d['progress'][1]['t_ms'] - d['progress'][0]['t_ms'] >= 1000"
json "$T/st.json" "len(d['failures']) == 2 and d['failures'][0]['device'] == '''$EVIL''' and d['failures'][0]['state'] == 'failed'"
json "$T/st.json" "d['failures'][1]['device'] == '$ID3' and d['failures'][1]['state'] == 'pending' and '<img src=x onerror=alert(1)>' in d['failures'][1]['reason']"
expect 0 "$S" ota campaign show --dir srv r2
has "$T/out" "2 done, 1 failed, 1 pending"
has "$T/out" "latest failures:"

# --- the HTML source: escaped, bounded, headers
curl -sS --max-time 10 -D "$T/page.h" -o "$T/page.html" "$A/campaign/r2" && ok || bad "GET page"
has "$T/page.h" "Content-Type: text/html; charset=utf-8"
has "$T/page.h" "Content-Security-Policy: default-src 'none'"
has "$T/page.html" "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&#39;&amp;x"
has "$T/page.html" "&lt;img src=x onerror=alert(1)&gt;&quot;q"
hasnt "$T/page.html" "<script"
hasnt "$T/page.html" "<img"
hasnt "$T/page.html" "http://\|https://"      # no external assets
[ "$(wc -c <"$T/page.html")" -lt 524288 ] && ok || bad "page too large"

# --- headless chromium: screenshot and rendered DOM
chrome --window-size=1000,1000 --screenshot="$T/page.png" "$A/campaign/r2" >/dev/null
[ -s "$T/page.png" ] && ok || { bad "no screenshot"; cat "$T/chrome.err" >&2; }
# done green, failed red (the plot's lines and the state bars)
$CHECK png "$T/page.png" 1000 1000 2e8b3d c62828 && ok || bad "screenshot check"
chrome --dump-dom "$A/campaign/r2" >"$T/dom.html"
$CHECK dom "$T/dom.html" "$T/st.json" && ok || bad "rendered page vs --json"
[ -n "${SHOT:-}" ] && cp "$T/page.png" "$SHOT"

# --- tampered twin of the page check: a page whose numbers differ is caught
sed 's/"done":2/"done":3/' "$T/st.json" >"$T/wrong.json"
$CHECK dom "$T/dom.html" "$T/wrong.json" 2>/dev/null && bad "checker accepts wrong numbers" || ok
printf 'not a png' >"$T/blank.png"
$CHECK png "$T/blank.png" 1000 1000 2>/dev/null && bad "checker accepts a non-PNG" || ok

# --- the index, and what is not there
chrome --dump-dom "$A/campaign/" >"$T/index.html"
$CHECK index "$T/index.html" r2 'pd "<b>"' && ok || bad "index"
curl -sS --max-time 10 -o "$T/idx.json" "$A/campaign/?format=json" && ok || bad "index json"
json "$T/idx.json" "sorted(c['name'] for c in d['campaigns']) == sorted(['r2', 'pd \"<b>\"'])"
curl -sS --max-time 10 -o "$T/pd.json" "$A/campaign/pd%20%22%3Cb%3E%22.json" && ok || bad "encoded name"
json "$T/pd.json" "d['name'] == 'pd \"<b>\"' and d['total'] == 1 and d['action'] == 'put-data'"
for p in /campaign/nosuch /campaign/nosuch.json /campaign/r2%00 /campaign/r2/x /other; do
    c=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$A$p")
    [ "$c" = 404 ] && ok || bad "GET $p: HTTP $c, want 404"
done
c=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$A/campaign/r2")
[ "$c" = 501 ] && ok || bad "POST on the admin listener: HTTP $c (evhttp: 501 for a method not allowed)"
# --- bounded: a 1200-device campaign (jobs ended by hand in the registry,
# 1000 done and 200 failed over 20 minutes) gives at most 120 progress
# points ending on the exact counts, 20 failures, a page under the limit
python3 -c '
for i in range(1200): print("BULK-%05d,fleet:1,kdf3,1,bulk" % i)' >bulk.csv
expect 0 "$S" ota device import --dir srv bulk.csv
expect 0 "$S" ota campaign create --dir srv --name bulk --target tag:bulk --put-data 0101=0102
NOW=$(date +%s%3N)
reg_sql srv "UPDATE job SET state = CASE WHEN CAST(substr(device, 6) AS INTEGER) % 6 = 0 THEN 'failed' ELSE 'done' END,
    reason = CASE WHEN CAST(substr(device, 6) AS INTEGER) % 6 = 0 THEN 'card refused: ' || device ELSE '' END,
    updated = $NOW + CAST(substr(device, 6) AS INTEGER) * 1000 WHERE campaign = 'bulk'" && ok || bad "bulk update"
curl -sS --max-time 20 -o "$T/bulk.json" "$A/campaign/bulk.json" && ok || bad "bulk json"
json "$T/bulk.json" "d['total'] == 1200 and d['done'] == 1000 and d['failed'] == 200"
json "$T/bulk.json" "len(d['progress']) == 120 and d['progress'][-1]['done'] == 1000 and d['progress'][-1]['failed'] == 200"
json "$T/bulk.json" "all(a['t_ms'] <= b['t_ms'] and a['done'] <= b['done'] for a, b in zip(d['progress'], d['progress'][1:]))"
json "$T/bulk.json" "len(d['failures']) == 20 and d['failures'][0]['device'] == 'BULK-01194'"
curl -sS --max-time 20 -o "$T/bulk.html" "$A/campaign/bulk" && ok || bad "bulk page"
[ "$(wc -c <"$T/bulk.html")" -lt 65536 ] && ok || bad "bulk page: $(wc -c <"$T/bulk.html") bytes"
has "$T/bulk.html" "1000 / 1200"

# the admin listener still serves /metrics
curl -sS --max-time 10 "$A/metrics" >"$T/metrics" && ok || bad "metrics"
has "$T/metrics" "scpkit_ota_sessions_completed_total 2"
stop_pid $SRV_PID; SRV_PID=
has srv/server.log "event=stopped"
hasnt srv/server.err "AddressSanitizer\|LeakSanitizer\|runtime error"   # ASan+UBSan build
finish ota_status
