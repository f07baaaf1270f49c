#!/usr/bin/env python3
"""Render scp_bench's JSON (bench/results.json) and the PC/SC round trip's
(bench/pcsc_results.json) as the Markdown tables of BENCHMARKS.md.

  bench/results_md.py [RESULTS.json [PCSC.json]]           tables on stdout
  bench/results_md.py --update BENCHMARKS.md [RESULTS [PCSC]]
      replace what stands between the "<!-- results -->" and
      "<!-- /results -->" lines of BENCHMARKS.md"""
import io
import json
import os
import sys

# Issue 5's targets: ratio to the floor measured in the same run.
TARGETS = [("wrap", 16, 1.5), ("unwrap", 16, 1.5), ("wrap", 240, 1.5),
           ("unwrap", 240, 1.5), ("wrap", 4096, 1.3), ("unwrap", 4096, 1.3)]
SESSION_TARGET = 2.0


def ns(v):
    return "-" if v is None else f"{v:,.0f}"


def x(v, fl):
    return "-" if v is None or not fl else f"{v / fl:.2f}x"


def targets(d):
    print("| target | key | mode | ratio to the floor | limit | met |")
    print("|---|---|---|---:|---:|---|")
    for r in d["rows"]:
        limit = None
        if r["op"] == "session":
            limit = SESSION_TARGET
        for op, n, lim in TARGETS:
            if r["op"] == op and r["bytes"] == n:
                limit = lim
        if limit is None or not r["floor_ns"]:
            continue
        ratio = r["ns"] / r["floor_ns"]
        what = r["op"] if r["op"] == "session" else f"{r['op']} {r['bytes']} B"
        print(f"| {what} | {r['key_bits']} | {r['mode']} | {ratio:.2f}x | {limit:.1f}x | "
              f"{'yes' if ratio <= limit else '**no**'} |")
    print()


def pcsc(path):
    if not path or not os.path.exists(path):
        print("(no PC/SC round-trip results)\n")
        return
    with open(path) as f:
        p = json.load(f)
    extra = p["scp03_l33_us"] - p["plain_us"]
    print(f"PC/SC round trip through `{p['reader']}` (pcscd + vpcd + `scpkit card run`), "
          f"median of {p['n']}:\n")
    print("| exchange | us |")
    print("|---|---:|")
    print(f"| plain GET DATA (CPLC) | {p['plain_us']:.1f} |")
    print(f"| the same at SCP03 level 33 | {p['scp03_l33_us']:.1f} (+{extra:.1f}) |")
    print(f"| channel set-up (SELECT + INITIALIZE UPDATE + EXTERNAL AUTHENTICATE) | "
          f"{p['channel_open_us']:.1f} |")
    print()


def render(d, pcsc_path):
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
          f"{d['allocs_per_apdu_openssl_path']} (OpenSSL path).\n")
    targets(d)
    pcsc(pcsc_path)


def main():
    args = sys.argv[1:]
    update = None
    if args[:1] == ["--update"]:
        update, args = args[1], args[2:]
    path = args[0] if args else "bench/results.json"
    pcsc_path = args[1] if len(args) > 1 else "bench/pcsc_results.json"
    with open(path) as f:
        d = json.load(f)
    if update is None:
        render(d, pcsc_path)
        return
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        render(d, pcsc_path)
    finally:
        sys.stdout = stdout
    with open(update) as f:
        doc = f.read()
    begin, end = "<!-- results -->\n", "<!-- /results -->"
    i, j = doc.index(begin) + len(begin), doc.index(end)
    with open(update, "w") as f:
        f.write(doc[:i] + "\n" + out.getvalue() + doc[j:])


if __name__ == "__main__":
    main()
