#!/usr/bin/env python3
"""The include graph of libscpkit points one way (issue 13 item 1):

    core -> crypto -> sm -> protocols -> gp -> transports -> applications

A source file or public header may include headers of its own layer and of
the layers below it, never above. Layers, by directory and public header:

  0 core        src/core        rc.h buf.h tlv.h apdu.h
  1 crypto      src/crypto      crypto.h des.h ec.h cert.h
  2 sm          src/sm          smchain.h (the sessions' chaining state)
  3 protocols   src/scp03 src/scp02 src/scp11 src/iso7816
                                scp03.h scp02.h scp11.h iso7816sm.h
  4 gp          src/gp          gp.h
  5 transports  src/transport   transport.h channel.h
  6 apps        src/card src/keys src/ota tools   card.h keystore.h ...

Internal headers ("<dir>/internal.h" and the like) belong to their
directory's layer. A header or directory not listed is an error (so a new
one gets a layer on purpose). KNOWN lists edges that break the rule today,
each with its reason; a new break fails, and so does a KNOWN edge that is
gone (so the list only shrinks).

Usage: check_layers.py <repo root>    |    check_layers.py --selftest
"""
import os
import re
import sys
import tempfile

CORE, CRYPTO, SM, PROTO, GP, TRANSPORT, APPS = range(7)
NAMES = ["core", "crypto", "sm", "protocols", "gp", "transports", "apps"]

DIRS = {
    "core": CORE, "crypto": CRYPTO, "sm": SM,
    "scp03": PROTO, "scp02": PROTO, "scp11": PROTO, "iso7816": PROTO,
    "gp": GP, "transport": TRANSPORT,
    "card": APPS, "keys": APPS, "ota": APPS,
}
HEADERS = {
    "rc.h": CORE, "buf.h": CORE, "tlv.h": CORE, "apdu.h": CORE,
    "crypto.h": CRYPTO, "des.h": CRYPTO, "ec.h": CRYPTO, "cert.h": CRYPTO,
    "smchain.h": SM,
    "scp03.h": PROTO, "scp02.h": PROTO, "scp11.h": PROTO, "iso7816sm.h": PROTO,
    "gp.h": GP,
    "transport.h": TRANSPORT, "channel.h": TRANSPORT,
    "card.h": APPS, "keystore.h": APPS, "ota.h": APPS, "scpkit.h": APPS,
}
# (including file's directory or public header, included header): why.
KNOWN = {
    ("src/scp11", "scpkit/channel.h"):
        "SCP11 opens its channel over a transport from src/scp11; "
        "to move up (a sans-I/O SCP11 open, the transport loop in src/transport)",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def header_layer(inc):
    """Layer of an included header, or None when unknown."""
    if inc.startswith("scpkit/"):
        return HEADERS.get(inc[len("scpkit/"):])
    top = inc.split("/", 1)[0]
    return DIRS.get(top) if "/" in inc else None


def check(root, known=None):
    known = KNOWN if known is None else known
    errors, seen = [], set()
    files = []
    for d in sorted(os.listdir(os.path.join(root, "src"))):
        full = os.path.join(root, "src", d)
        if not os.path.isdir(full):
            continue
        if d not in DIRS:
            errors.append(f"src/{d}: directory has no layer (add it to DIRS)")
            continue
        for f in sorted(os.listdir(full)):
            if f.endswith((".c", ".h")):
                files.append((f"src/{d}", DIRS[d], os.path.join(full, f)))
    inc_dir = os.path.join(root, "include", "scpkit")
    for f in sorted(os.listdir(inc_dir)):
        if not f.endswith(".h"):
            continue
        if f not in HEADERS:
            errors.append(f"include/scpkit/{f}: public header has no layer (add it to HEADERS)")
            continue
        files.append((f"scpkit/{f}", HEADERS[f], os.path.join(inc_dir, f)))
    for unit, layer, path in files:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            if inc.startswith("openssl/") or "/" not in inc:
                continue  # system-style and same-directory includes
            h = header_layer(inc)
            rel = os.path.relpath(path, root)
            if h is None:
                errors.append(f"{rel}: includes {inc}, which has no layer")
            elif h > layer:
                if (unit, inc) in known:
                    seen.add((unit, inc))
                    continue
                errors.append(f"{rel} ({NAMES[layer]}) includes {inc} ({NAMES[h]}): "
                              f"the include graph must point down")
    for edge in sorted(set(known) - seen):
        errors.append(f"known exception {edge} no longer occurs: remove it from KNOWN")
    return errors


def selftest():
    """The checker must catch an upward include and pass a clean tree."""
    known = {("src/scp11", "scpkit/channel.h"): "the self-test's one known edge"}
    with tempfile.TemporaryDirectory() as t:
        def put(rel, text):
            p = os.path.join(t, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as fh:
                fh.write(text)
        put("include/scpkit/crypto.h", '#include "scpkit/rc.h"\n')
        put("include/scpkit/rc.h", "\n")
        put("include/scpkit/channel.h", '#include "scpkit/crypto.h"\n')
        put("src/crypto/a.c", '#include "scpkit/crypto.h"\n#include "core/guard.h"\n')
        put("src/scp11/b.c", '#include "scpkit/channel.h"\n')  # the KNOWN edge
        clean = check(t, known)
        if clean:
            print("selftest: a clean tree was refused:", clean)
            return 1
        put("src/crypto/bad.c", '#include "scpkit/channel.h"\n')
        bad = check(t, known)
        if len(bad) != 1 or "src/crypto/bad.c" not in bad[0]:
            print("selftest: the upward include was not reported:", bad)
            return 1
        os.remove(os.path.join(t, "src/crypto/bad.c"))
        # the secure-messaging core sits below the protocols it serves
        put("include/scpkit/scp02.h", '#include "scpkit/crypto.h"\n')
        put("src/sm/ok.c", '#include "crypto/aes.h"\n')
        put("src/scp02/w.c", '#include "sm/sm.h"\n')
        put("src/sm/bad.c", '#include "scpkit/scp02.h"\n')
        bad = check(t, known)
        if len(bad) != 1 or "src/sm/bad.c" not in bad[0]:
            print("selftest: sm including a protocol was not reported:", bad)
            return 1
        os.remove(os.path.join(t, "src/sm/bad.c"))
        os.remove(os.path.join(t, "src/scp11/b.c"))
        gone = check(t, known)
        if len(gone) != 1 or "no longer occurs" not in gone[0]:
            print("selftest: a stale known exception was not reported:", gone)
            return 1
    print("selftest: ok")
    return 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--selftest":
        return selftest()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    errors = check(sys.argv[1])
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} problem(s)")
        return 1
    print("check_layers: the include graph points one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
