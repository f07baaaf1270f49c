#!/usr/bin/env python3
"""Render scp_bench's JSON (bench/results.json) as the Markdown tables of
BENCHMARKS.md.  Usage: bench/results_md.py [bench/results.json]"""
import json
import sys


def ns(v):
    return "-" if v is None else f"{v:,.0f}"


def x(v, fl):
    return "-" if v is None or not fl else f"{v / fl:.2f}x"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results.json"
    with open(path) as f:
        d = json.load(f)
    print(f"CPU: {d['cpu']}; AES path: {d['aes_impl']}; {d['openssl']}; "
          f"gcc {d['compiler']}; load average {d['load_begin']:.2f} at start, "
          f"{d['load_end']:.2f} at end.\n")
    ops = [r for r in d["rows"] if r["op"] in ("wrap", "unwrap", "card")]
    print("| op | key | mode | bytes | scpkit ns | floor ns | x floor | "
          "scpkit OpenSSL path ns | x floor | EVP kept ns | x floor | "
          "EVP per-APDU ns | x floor |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in ops:
        fl = r["floor_ns"]
        print(f"| {r['op']} | {r['key_bits']} | {r['mode']} | {r['bytes']} | "
              f"{ns(r['ns'])} | {ns(fl)} | {x(r['ns'], fl)} | "
              f"{ns(r['openssl_path_ns'])} | {x(r['openssl_path_ns'], fl)} | "
              f"{ns(r['evp_kept_ns'])} | {x(r['evp_kept_ns'], fl)} | "
              f"{ns(r['evp_fresh_ns'])} | {x(r['evp_fresh_ns'], fl)} |")
    print()
    print("| operation | key | mode | scpkit ns | per second | floor ns | x floor | "
          "scpkit OpenSSL path ns | heap allocations |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in d["rows"]:
        if r["op"] in ("wrap", "unwrap", "card"):
            continue
        allocs = "-" if r["allocs"] is None else f"{r['allocs']:.0f}"
        print(f"| {r['op']} | {r['key_bits'] or '-'} | {r['mode'] or '-'} | "
              f"{ns(r['ns'])} | {ns(r['per_second'])} | {ns(r['floor_ns'])} | "
              f"{x(r['ns'], r['floor_ns'])} | {ns(r['openssl_path_ns'])} | {allocs} |")
    print()
    print(f"Session state: sizeof(scp03_session) = {d['session_bytes']} bytes. "
          f"Heap allocations per APDU exchange: {d['allocs_per_apdu']} (AES-NI path), "
          f"{d['allocs_per_apdu_openssl_path']} (OpenSSL path).")


if __name__ == "__main__":
    main()
