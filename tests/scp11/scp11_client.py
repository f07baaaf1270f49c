#!/usr/bin/env python3
"""An independent SCP11 client for interop tests, written from the protocol
facts (GPC v2.3 Amendment F; /work/shared/facts/scp11.md): python3-pyscard
for PC/SC and python3-cryptography for ECDH, the X9.63 KDF, AES-CMAC and
AES-CBC. Nothing from scpkit is used.

  scp11_client.py mkoce DIR            write DIR/oce-ca.pem, DIR/oce.key, DIR/oce.pem
                                       (and DIR/other.* from an unrelated CA)
  scp11_client.py run READER CARDDIR OCEDIR
      SELECT; GET DATA BF21 13/01, chain checked against CARDDIR/sd-ca.pem;
      SCP11b; a wrapped GET DATA; then SCP11a and SCP11c with the OCE chain
      (PSO with ISO chaining); refusals: a point off the curve, an OCE
      certificate from another CA, a chained PSO cut short, key management
      over SCP11b. Prints one line per check; exits 1 on the first failure.
"""
import datetime
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.x509.oid import NameOID

ISD = bytes.fromhex("A000000151000000")


def mkcert(subject_key, cn, issuer_key, issuer_name, ca, days, serial):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .public_key(subject_key.public_key()).serial_number(serial)
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=not ca, key_cert_sign=ca, crl_sign=ca,
                                      encipher_only=False, decipher_only=False), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


def mkoce(d):
    for prefix in ("", "other-"):
        ca = ec.generate_private_key(ec.SECP256R1())
        cac = mkcert(ca, "OCE CA " + prefix, ca, None, True, 30, 7)
        k = ec.generate_private_key(ec.SECP256R1())
        leaf = mkcert(k, "OCE " + prefix, ca, cac.subject, False, 10, 0x4242)
        open(os.path.join(d, prefix + "oce-ca.pem"), "wb").write(cac.public_bytes(serialization.Encoding.PEM))
        open(os.path.join(d, prefix + "oce.pem"), "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
        kf = os.path.join(d, prefix + "oce.key")
        open(kf, "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        os.chmod(kf, 0o600)


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what)


class Card:
    def __init__(self, reader):
        from smartcard.System import readers
        rs = [r for r in readers() if reader in str(r)]
        if not rs:
            raise Fail("no reader " + reader)
        self.c = rs[0].createConnection()
        self.c.connect()

    def tx(self, apdu):
        data, sw1, sw2 = self.c.transmit(list(apdu))
        while sw1 == 0x61:  # the rest with GET RESPONSE
            more, sw1, sw2 = self.c.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
            data += more
        return bytes(data), (sw1 << 8) | sw2


def cmac(key, data):
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def x963(z, info, n):
    out, k = b"", 1
    while len(out) < n:
        out += hashlib.sha256(z + k.to_bytes(4, "big") + info).digest()
        k += 1
    return out[:n]


def point(pub):
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def split_certs(b):
    out = []
    while b:
        if b[0] != 0x30 or b[1] != 0x82:
            raise Fail("certificate store: not DER certificates")
        n = 4 + int.from_bytes(b[2:4], "big")
        out.append(x509.load_der_x509_certificate(b[:n]))
        b = b[n:]
    return out


class Session:
    """SCP03 secure messaging with SCP11 keys: C-MAC, C-DEC, R-MAC, R-ENC (level 33, S8)."""

    def __init__(self, enc, mac, rmac, receipt):
        self.enc, self.mac, self.rmac, self.mcv, self.ctr = enc, mac, rmac, receipt, 0

    def aes(self, block):
        return Cipher(algorithms.AES(self.enc), modes.ECB()).encryptor().update(block)

    def wrap(self, cla, ins, p1, p2, data=b""):
        self.ctr += 1
        if data:
            padded = data + b"\x80" + b"\x00" * (15 - len(data) % 16)
            iv = self.aes(self.ctr.to_bytes(16, "big"))
            data = Cipher(algorithms.AES(self.enc), modes.CBC(iv)).encryptor().update(padded)
        hdr = bytes([cla | 0x04, ins, p1, p2, len(data) + 8])
        self.mcv = cmac(self.mac, self.mcv + hdr + data)
        return hdr + data + self.mcv[:8] + b"\x00"

    def unwrap(self, data, sw):
        if sw != 0x9000:
            return data, sw
        body, tag = data[:-8], data[-8:]
        check(cmac(self.rmac, self.mcv + body + sw.to_bytes(2, "big"))[:8] == tag, "R-MAC verifies")
        if body:
            iv = self.aes(b"\x80" + self.ctr.to_bytes(15, "big"))
            plain = Cipher(algorithms.AES(self.enc), modes.CBC(iv)).decryptor().update(body)
            body = plain[:plain.rindex(b"\x80")]
        return body, sw


def authenticate(card, variant, kid, kvn, pk_sd, sk_oce=None):
    esk = ec.generate_private_key(ec.SECP256R1())
    i = {"a": 1, "b": 0, "c": 3}[variant]
    data = bytes([0xA6, 0x0D, 0x90, 0x02, 0x11, i, 0x95, 0x01, 0x3C, 0x80, 0x01, 0x88, 0x81, 0x01, 0x10,
                  0x5F, 0x49, 0x41]) + point(esk.public_key())
    ins = 0x88 if variant == "b" else 0x82
    resp, sw = card.tx(bytes([0x80, ins, kvn, kid, len(data)]) + data + b"\x00")
    check(sw == 0x9000, "SCP11%s %s AUTHENTICATE 9000" % (variant, "INTERNAL" if ins == 0x88 else "MUTUAL"))
    check(resp[:3] == b"\x5f\x49\x41" and resp[68:70] == b"\x86\x10" and len(resp) == 86,
          "answer is 5F49 ePK.SD 86 receipt")
    epk_sd = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), resp[3:68])
    if variant == "c":
        check(resp[3:68] == point(pk_sd), "SCP11c: the card answers its static key")
    shsee = esk.exchange(ec.ECDH(), epk_sd)
    shses = (esk if variant == "b" else sk_oce).exchange(ec.ECDH(), pk_sd)
    km = x963(shsee + shses, b"\x3c\x88\x10", 80)
    keys = [km[k * 16:(k + 1) * 16] for k in range(5)]
    receipt = cmac(keys[0], data + resp[:68])
    check(receipt == resp[70:86], "receipt = CMAC(receipt key, command data | card's 5F49)")
    return Session(keys[1], keys[2], keys[3], receipt)


def run(reader, carddir, ocedir):
    card = Card(reader)
    _, sw = card.tx(bytes([0x00, 0xA4, 0x04, 0x00, len(ISD)]) + ISD)
    check(sw == 0x9000, "SELECT ISD")
    ca = x509.load_pem_x509_certificate(open(os.path.join(carddir, "sd-ca.pem"), "rb").read())

    def sd_key(kid, kvn):
        # a plain command would end an open session (6982): select first
        _, sw = card.tx(bytes([0x00, 0xA4, 0x04, 0x00, len(ISD)]) + ISD)
        store, sw = card.tx(bytes([0x00, 0xCA, 0xBF, 0x21, 0x06, 0xA6, 0x04, 0x83, 0x02, kid, kvn, 0x00]))
        check(sw == 0x9000, "GET DATA BF21 %02X/%02X" % (kid, kvn))
        leaf = split_certs(store)[-1]
        ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
        check(leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement,
              "SD certificate %02X/%02X signed by sd-ca.pem, keyAgreement" % (kid, kvn))
        return leaf.public_key()

    pk13 = sd_key(0x13, 0x01)
    s = authenticate(card, "b", 0x13, 0x01, pk13)
    body, sw = s.unwrap(*card.tx(s.wrap(0x80, 0xCA, 0x00, 0xE0)))
    check(sw == 0x9000 and body[:1] == b"\xe0", "wrapped GET DATA E0 over SCP11b")
    body, sw = s.unwrap(*card.tx(s.wrap(0x80, 0xF1, 0x00, 0x13, b"\x02\xf0\x01\x00")))
    check(sw == 0x6982, "GENERATE KEY refused over SCP11b (6982)")

    # a point off the curve: refused, no session
    esk = ec.generate_private_key(ec.SECP256R1())
    bad = bytearray(point(esk.public_key()))
    bad[-1] ^= 1
    data = bytes([0xA6, 0x0D, 0x90, 0x02, 0x11, 0x00, 0x95, 0x01, 0x3C, 0x80, 0x01, 0x88, 0x81, 0x01, 0x10, 0x5F, 0x49, 0x41]) + bytes(bad)
    _, sw = card.tx(bytes([0x80, 0x88, 0x01, 0x13, len(data)]) + data + b"\x00")
    check(sw == 0x6A80, "ePK.OCE off the curve refused (6A80)")

    # SCP11a / SCP11c with the OCE chain
    sk_oce = serialization.load_pem_private_key(open(os.path.join(ocedir, "oce.key"), "rb").read(), None)

    def pso(path, cut=False):
        der = x509.load_pem_x509_certificate(open(path, "rb").read()).public_bytes(serialization.Encoding.DER)
        pieces = [der[k:k + 255] for k in range(0, len(der), 255)]
        check(len(pieces) > 1, "OCE certificate goes up in %d chained pieces" % len(pieces))
        for n, p in enumerate(pieces):
            last = n == len(pieces) - 1
            if cut and last:
                return None
            _, sw = card.tx(bytes([0x80 if last else 0x90, 0x2A, 0x03, 0x10, len(p)]) + p)
            if sw != 0x9000:
                return sw
        return 0x9000

    for variant, kid in (("a", 0x11), ("c", 0x15)):
        pk = sd_key(kid, 0x03)
        check(pso(os.path.join(ocedir, "oce.pem")) == 0x9000, "PSO with the OCE certificate")
        s = authenticate(card, variant, kid, 0x03, pk, sk_oce)
        body, sw = s.unwrap(*card.tx(s.wrap(0x80, 0xCA, 0x00, 0xE0)))
        check(sw == 0x9000 and body[:1] == b"\xe0", "wrapped GET DATA E0 over SCP11" + variant)
    card.tx(bytes([0x00, 0xA4, 0x04, 0x00, len(ISD)]) + ISD)
    check(pso(os.path.join(ocedir, "other-oce.pem")) == 0x6A80, "OCE certificate of another CA refused (6A80)")
    pso(os.path.join(ocedir, "oce.pem"), cut=True)
    data = bytes([0xA6, 0x0D, 0x90, 0x02, 0x11, 0x01, 0x95, 0x01, 0x3C, 0x80, 0x01, 0x88, 0x81, 0x01, 0x10,
                  0x5F, 0x49, 0x41]) + point(esk.public_key())
    _, sw = card.tx(bytes([0x80, 0x82, 0x03, 0x11, len(data)]) + data + b"\x00")
    check(sw == 0x6982, "MUTUAL AUTHENTICATE after a PSO cut short refused (6982)")
    print("all SCP11 interop checks passed")


if __name__ == "__main__":
    try:
        if sys.argv[1] == "mkoce":
            mkoce(sys.argv[2])
        else:
            run(sys.argv[2], sys.argv[3], sys.argv[4])
    except Fail as e:
        print("FAIL:", e)
        sys.exit(1)
