#!/bin/sh
# Every symbol the shared libraries export is a function declared in a
# public header (include/scpkit/*.h; card.h for libscpkit-card) under a
# scp name; nothing internal
# (scp03_fail, the AES-NI and OpenSSL backends, the card's helpers) leaks.
# libscpkit needs nothing but libcrypto and libc.
# Usage: check_exports.sh libscpkit.so libscpkit-pcsc.so libscpkit-card.so include/scpkit
set -u
core=$1 pcsc=$2 card=$3 inc=$4
T=$(mktemp -d /tmp/scpkit-exports.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"

grep -ho 'scp[a-z0-9_]*[[:space:]]*(' "$inc"/*.h | sed 's/[[:space:]]*($//' | sort -u >"$T/all"
# libscpkit-card carries its own copy of the engine: it exports card.h only
grep -ho 'scp[a-z0-9_]*[[:space:]]*(' "$inc"/card.h | sed 's/[[:space:]]*($//' | sort -u >"$T/card"
for lib in "$core" "$pcsc" "$card"; do
    if [ "$lib" = "$card" ]; then cp "$T/card" "$T/api"; else cp "$T/all" "$T/api"; fi
    nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort -u >"$T/got"
    n=$(wc -l <"$T/got")
    [ "$n" -gt 0 ] && ok || bad "$lib exports nothing"
    if comm -23 "$T/got" "$T/api" | grep -q .; then
        bad "$lib exports symbols no public header declares:"
        comm -23 "$T/got" "$T/api" | head -20 | sed 's/^/    /' >&2
    else ok; fi
    grep -v -E '^scp(0[23]|11)?_' "$T/got" >"$T/odd" && bad "$lib exports names outside scp_/scp02_/scp03_/scp11_: $(head -3 "$T/odd")" || ok
    echo "$(basename "$lib"): $n symbols exported"
done
# the engine's API is there, its internals are not
nm -D --defined-only "$core" | awk '{ print $3 }' | sed 's/@.*//' >"$T/core"
for s in scp03_host_wrap scp03_card_unwrap scp_version scp_kcv_aes scp_channel_start; do
    grep -qx "$s" "$T/core" && ok || bad "libscpkit does not export $s"
done
# the AES key type and its functions are internal (src/crypto/aes.h)
for s in scp03_fail scp_aesni_init scp_aes_init scp_aes_open scp_cmac_once scp_kdf_gp \
    scp_pcsc_open scp_card_init; do
    grep -qx "$s" "$T/core" && bad "libscpkit exports $s" || ok
done
nm -D --defined-only "$pcsc" | grep -q ' scp_pcsc_open' && ok || bad "libscpkit-pcsc lacks scp_pcsc_open"
nm -D --defined-only "$card" | grep -q ' scp_card_open' && ok || bad "libscpkit-card lacks scp_card_open"
nm -D --defined-only "$card" | grep -q ' scp03_host_wrap' && bad "libscpkit-card exports the engine" || ok
# the public headers' layouts hold no crypto internals: AES and DES keys and
# MAC states are opaque slots (scp_aes_slot, scp_des3, scp_des_mac), whose
# contents live in src/crypto (aes.h, des_ct.h)
if grep -nE 'scp_des_ks|uint32_t[[:space:]]+k\[|rk\[|^[[:space:]]*(const[[:space:]]+)?EVP_|__m128i' "$inc"/*.h >"$T/internals"; then
    bad "public headers expose crypto internals: $(head -3 "$T/internals")"
else ok; fi
# an embedded host links libcrypto alone
needed=$(objdump -p "$core" | awk '$1 == "NEEDED" { print $2 }' | sort | tr '\n' ' ')
echo "libscpkit needs: $needed"
for d in $needed; do
    case $d in libcrypto.so.*|libc.so.*|libpthread.so.*|ld-linux*) ok ;;
    *) bad "libscpkit needs $d" ;; esac
done
soname=$(objdump -p "$core" | awk '$1 == "SONAME" { print $2 }')
case $soname in libscpkit.so.[0-9]*) ok ;; *) bad "SONAME is '$soname'" ;; esac
finish exported_symbols
