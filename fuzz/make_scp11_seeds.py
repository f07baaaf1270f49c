#!/usr/bin/env python3
"""Seeds for fuzz/corpus/scp11_cert and fuzz/corpus/scp11_auth, from the
public vectors in tests/vectors/scp11_*.txt and, for the host side of
fuzz_scp11_auth, card answers computed here with python3-cryptography for
the target's fixed keys (so the happy path is in the corpus too)."""
import hashlib, os, re, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import algorithms

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
vec = open(os.path.join(root, "tests/vectors/scp11_openscp.txt")).read()
rs = open(os.path.join(root, "tests/vectors/scp11_pkcs11rs.txt")).read()
cd = os.path.join(root, "fuzz/corpus/scp11_cert")
ad = os.path.join(root, "fuzz/corpus/scp11_auth")
os.makedirs(cd, exist_ok=True)
os.makedirs(ad, exist_ok=True)

def put(d, name, b):
    open(os.path.join(d, name), "wb").write(b)

certs = [bytes.fromhex(h) for h in dict.fromkeys(re.findall(r"^oce_cert = (\S+)", vec, re.M))]
for i, c in enumerate(certs):
    put(cd, "oce-%d" % i, c)
    put(cd, "oce-%d-cut" % i, c[: len(c) // 2])
for i, block in enumerate(vec.split("[scp11]")[1:]):
    st = b"".join(bytes.fromhex(x)[:-2] for x in re.findall(r"^get_data_rapdu = (\S+)", block, re.M))
    put(cd, "store-%d" % i, st)
for i, block in enumerate(vec.split("[cert_store]")[1:]):
    st = b"".join(bytes.fromhex(x)[:-2] for x in re.findall(r"^rapdu = (\S+)", block, re.M))
    put(cd, "chain-%d" % i, st)
    hl = 5 if st[2] == 0x82 else 4
    put(cd, "chain-%d-bare" % i, st[hl:])

for i, h in enumerate(dict.fromkeys(re.findall(r"^ma_cmd = (\S+)", vec, re.M))):
    put(ad, "card-openscp-%d" % i, b"\x00" + bytes.fromhex(h))
for i, h in enumerate(re.findall(r"^auth_cmd = (\S+)", rs, re.M)):
    put(ad, "card-pkcs11rs-%d" % i, b"\x00" + bytes.fromhex(h))
    put(ad, "card-pkcs11rs-%d-s16" % i, b"\x02" + bytes.fromhex(h))

# host side: the fuzz target's keys (fuzz/fuzz_scp11_auth.c)
d_sd = int("112233445566778899AABBCCDDEEF0010203040506070809" "0A0B0C0D0E0F1011", 16)
sk_sd = ec.derive_private_key(d_sd, ec.SECP256R1())
sk_oce = ec.derive_private_key(4, ec.SECP256R1())
esk = ec.derive_private_key(1, ec.SECP256R1())
pt = lambda k: k.public_key().public_bytes(
    __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.X962,
    __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat.UncompressedPoint)
for v, i in ((1, 0x01), (2, 0x00), (3, 0x03)):
    data = bytes([0xA6, 0x0D, 0x90, 0x02, 0x11, i, 0x95, 0x01, 0x3C, 0x80, 0x01, 0x88, 0x81, 0x01, 0x10,
                  0x5F, 0x49, 0x41]) + pt(esk)
    card_e = sk_sd if v == 3 else ec.derive_private_key(7, ec.SECP256R1())
    shsee = card_e.exchange(ec.ECDH(), esk.public_key())
    shses = sk_sd.exchange(ec.ECDH(), esk.public_key() if v == 2 else sk_oce.public_key())
    z = shsee + shses
    km = b"".join(hashlib.sha256(z + k.to_bytes(4, "big") + b"\x3c\x88\x10").digest() for k in (1, 2, 3))
    tlv = b"\x5f\x49\x41" + pt(card_e)
    c = CMAC(algorithms.AES(km[:16])); c.update(data + tlv)
    ans = tlv + b"\x86\x10" + c.finalize()
    first = {1: 0x01, 2: 0x03, 3: 0x05}[v]  # (first >> 1) % 3 + 1 == v
    put(ad, "host-ok-%d" % v, bytes([first]) + ans)
    put(ad, "host-cut-%d" % v, bytes([first]) + ans[:40])
print("seeds written")
