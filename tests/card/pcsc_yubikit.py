"""yubikit's SecurityDomainSession against the virtual card's yubikey
profile through pcscd + vpcd, byte for byte as yubikit sends them (learnt
from Yubico/yubikey-manager: yubikit/securitydomain.py,
yubikit/core/smartcard/__init__.py, yubikit/core/smartcard/scp.py and
ykman/_cli/securitydomain.py):

- SELECT 00 A4 04 00 08 A000000151000000 (short, no Le);
- GET DATA with CLA 00 and an empty Lc byte (00 CA P1 P2 00); `sd info`
  reads FF33/FF34 (6A88 is "none") and E0, and parses E0 as bare C0
  entries, each C0 = KID KVN (type length)*; card recognition data as a
  bare 73 template (Tlv.unpack(0x73, ...));
- SCP03: INITIALIZE UPDATE 80 50 KVN 00 08 challenge (no Le), S8 parsing
  (challenge resp[13:21], cryptogram resp[21:29]); then every command in
  extended form, MACed over the extended header; commands with empty data
  still carry one encrypted padding block; EXTERNAL AUTHENTICATE (84 82
  33 00) extended too (84 82 33 00 00 00 10), as yubikit sends it;
- `sd keys import 1 KVN K:K:K`: PUT KEY 80 D8 00 81, data KVN | (88 10
  ct 03 kcv) x 3, answer KVN | kcv x 3 compared as bytes;
- `sd keys delete` of the last set without delete_last: 6985;
- `sd reset`: for each SCP03 set in E0, INITIALIZE UPDATE 80 50 00 00 08
  00..00 up to 65 times until 6983 or 6982 (6A80: go on; any other error
  is fatal; 9000: go on); afterwards the factory set KVN FF is back.
Usage: pcsc_yubikit.py READER (the card must be fresh: `card init
--profile yubikey`)."""

import os

from pcsc_host import FACTORY_KEY, Reader, Scp03, check, encode, h, main, tlv_list, _cbc, _aes_ecb

SD_AID = bytes.fromhex("A000000151000000")
EA_EXTENDED = True  # yubikit's ExtendedApduProcessor: the EA is extended too
STORE_AID = bytes.fromhex("F07363706B697401")


def select(r):
    data, sw = r.send(encode(0x00, 0xA4, 0x04, 0x00, SD_AID))
    check(sw == 0x9000, "SELECT SD: %04X" % sw)


def yk_get_data(r, tag):
    # yubikit ShortApduProcessor: header, Lc = len(data) always, no Le
    return r.send(bytes([0x00, 0xCA, tag >> 8, tag & 0xFF, 0x00]))


def key_information(data):
    """yubikit get_key_information: parse_list, then Tlv.unpack(0xC0)."""
    keys = {}
    for tag, v in tlv_list(data):
        check(tag == 0xC0, "key information entry with tag %X (yubikit wants bare C0)" % tag)
        check(len(v) >= 4 and len(v) % 2 == 0, "C0 entry %s" % h(v))
        keys[(v[0], v[1])] = dict(zip(v[2::2], v[3::2]))
    return keys


def authenticate(r, enc=FACTORY_KEY, kvn=0, tamper=False):
    s = Scp03(enc, enc, enc)
    data, sw = r.send(encode(0x80, 0x50, kvn, 0x00, s.iu_data()))  # no Le
    check(sw == 0x9000, "INITIALIZE UPDATE: %04X" % sw)
    check(len(data) == 29, "IU response %d bytes (S8, random challenge: 29)" % len(data))
    s.iu_response(data)
    ea = bytearray(s.external_authenticate(0x33, extended=EA_EXTENDED))
    want = "84823300000010" if EA_EXTENDED else "8482330010"
    check(ea[: len(want) // 2] == bytes.fromhex(want), "EA header %s" % h(ea[:7]))
    if tamper:
        ea[-1] ^= 0x01
    _, sw = r.send(bytes(ea))
    return s, sw


def send_scp(r, s, cla, ins, p1, p2, data=b""):
    # ScpProcessor: CLA | 04, data always encrypted (empty too), extended
    apdu = s.wrap(cla, ins, p1, p2, data, None, extended=True, encrypt_empty=True)
    resp, sw = r.send(apdu)
    if resp:
        resp = s.unwrap(resp, sw)
    return resp, sw


def test_sd_info(name):
    r = Reader(name)
    select(r)
    for tag in (0xFF33, 0xFF34):  # CA identifiers: SCP11 only
        _, sw = yk_get_data(r, tag)
        check(sw == 0x6A88, "GET DATA %04X: %04X, yubikit accepts only 6A88" % (tag, sw))
    data, sw = yk_get_data(r, 0xE0)
    check(sw == 0x9000, "GET DATA E0: %04X" % sw)
    keys = key_information(data)
    check(keys == {(1, 0xFF): {0x88: 16}, (2, 0xFF): {0x88: 16}, (3, 0xFF): {0x88: 16},
                   (0x13, 0x01): {0xB1: 32, 0xF0: 0}},  # SCP11b, P-256, as a 5.7.4 lists it
          "key information %r" % keys)
    data, sw = yk_get_data(r, 0x66)
    check(sw == 0x9000, "GET DATA 66: %04X" % sw)
    t = tlv_list(data)
    check(len(t) == 1 and t[0][0] == 0x73, "card recognition data is not one bare 73: %s" % h(data))
    inner = dict(tlv_list(t[0][1]))
    check(inner.get(0x06) == bytes.fromhex("2A864886FC6B01"), "GP card recognition OID")
    check(dict(tlv_list(inner[0x64])).get(0x06) == bytes.fromhex("2A864886FC6B040360"),
          "SCP03 i=60 OID")
    # the GP forms answer CLA 80 (a retail 5.7.4 does both)
    data, sw = r.send(bytes.fromhex("80CA00E000"))
    check(sw == 0x9000 and data[0] == 0xE0, "CLA 80 key information not in E0")
    r.close()


def test_scp03_and_keys(name):
    r = Reader(name)
    select(r)
    s, sw = authenticate(r, tamper=True)  # the tampered twin first
    check(sw != 0x9000, "EXTERNAL AUTHENTICATE with a bad MAC accepted")
    s, sw = authenticate(r)
    check(sw == 0x9000, "EXTERNAL AUTHENTICATE (extended, level 33): %04X" % sw)
    data, sw = send_scp(r, s, 0x00, 0xCA, 0x00, 0xE0)
    check(sw == 0x9000, "GET DATA E0 in the session: %04X" % sw)
    check((1, 0xFF) in key_information(data), "key information in the session")
    # sd keys import 1 0x01 ENC:MAC:DEK (three different keys)
    new = [os.urandom(16) for _ in range(3)]
    body, expected = bytes([0x01]), bytes([0x01])
    for k in new:
        kcv = _aes_ecb(k, b"\1" * 16)[:3]  # yubikit: _encrypt_cbc(k, 01 x 16), zero IV
        body += bytes([0x88, 0x10]) + _cbc(FACTORY_KEY, b"\0" * 16, k, True) + b"\x03" + kcv
        expected += kcv
    data, sw = send_scp(r, s, 0x80, 0xD8, 0x00, 0x81, body)
    check(sw == 0x9000 and data == expected, "PUT KEY: %04X %s" % (sw, h(data)))
    data, sw = send_scp(r, s, 0x00, 0xCA, 0x00, 0xE0)
    keys = key_information(data)
    check(set(keys) == {(1, 1), (2, 1), (3, 1), (0x13, 1)}, "the factory set not replaced: %r" % keys)
    # sd keys delete 1 0x01 (kid 1 -> by KVN only, P2 = delete_last = 0)
    _, sw = send_scp(r, s, 0x80, 0xE4, 0x00, 0x00, bytes.fromhex("D20101"))
    check(sw == 0x6985, "deleting the last set without delete_last: %04X" % sw)
    r.close()
    # the new set opens a session; KVN FF is gone
    r = Reader(name)
    select(r)
    s = Scp03(new[0], new[1], new[2])
    data, sw = r.send(encode(0x80, 0x50, 0x01, 0x00, s.iu_data()))
    check(sw == 0x9000, "IU with the new set: %04X" % sw)
    s.iu_response(data)
    _, sw = r.send(s.external_authenticate(0x33, extended=EA_EXTENDED))
    check(sw == 0x9000, "EA with the new set: %04X" % sw)
    _, sw = r.send(encode(0x80, 0x50, 0xFF, 0x00, os.urandom(8)))
    check(sw == 0x6A88, "IU for KVN FF after the import: %04X" % sw)
    r.close()
    globals()["NEW_KEYS"] = new


def test_store_then_reset(name):
    """ykman sd reset: blocks every SCP03 set with INITIALIZE UPDATEs; the
    card then holds the factory set, and the store application's data
    (written under the imported keys) is gone."""
    new = globals().get("NEW_KEYS")
    check(new is not None, "test_scp03_and_keys did not run")
    r = Reader(name)
    # write an object in the store application under the imported keys
    _, sw = r.send(encode(0x00, 0xA4, 0x04, 0x00, STORE_AID))
    check(sw == 0x9000, "SELECT store: %04X" % sw)
    s = Scp03(new[0], new[1], new[2])
    data, sw = r.send(encode(0x80, 0x50, 0x01, 0x00, s.iu_data()))
    check(sw == 0x9000, "IU on the store: %04X" % sw)
    s.iu_response(data)
    _, sw = r.send(s.external_authenticate(0x33, extended=EA_EXTENDED))
    check(sw == 0x9000, "EA on the store: %04X" % sw)
    _, sw = send_scp(r, s, 0x00, 0xDA, 0x01, 0x01, b"secret")
    check(sw == 0x9000, "PUT DATA: %04X" % sw)
    # reset(), as securitydomain.py does it
    select(r)
    data, sw = yk_get_data(r, 0xE0)
    keys = key_information(data)
    blocked = 0
    for kid, kvn in keys:
        if kid != 0x01:
            continue  # 02/03 go with 01
        for _ in range(65):
            _, sw = r.send(encode(0x80, 0x50, 0x00, 0x00, b"\0" * 8))
            if sw in (0x6983, 0x6982):
                blocked += 1
                break
            check(sw in (0x9000, 0x6A80), "reset: INITIALIZE UPDATE answered %04X" % sw)
        else:
            check(False, "reset: 65 tries and the set is not blocked")
    check(blocked == 1, "reset blocked %d sets" % blocked)
    data, sw = yk_get_data(r, 0xE0)
    check({k for k in key_information(data) if k[0] <= 3} == {(1, 0xFF), (2, 0xFF), (3, 0xFF)},
          "after reset: not the factory set")
    s, sw = authenticate(r)
    check(sw == 0x9000, "factory keys after reset: %04X" % sw)
    # the store's data went with the keys
    _, sw = r.send(encode(0x00, 0xA4, 0x04, 0x00, STORE_AID))
    s = Scp03(FACTORY_KEY, FACTORY_KEY, FACTORY_KEY)
    data, sw = r.send(encode(0x80, 0x50, 0x00, 0x00, s.iu_data()))
    s.iu_response(data)
    _, sw = r.send(s.external_authenticate(0x33, extended=EA_EXTENDED))
    check(sw == 0x9000, "EA on the store after reset: %04X" % sw)
    _, sw = send_scp(r, s, 0x00, 0xCA, 0x01, 0x01)
    check(sw == 0x6A88, "store data survived the reset: %04X" % sw)
    r.close()


if __name__ == "__main__":
    main([test_sd_info, test_scp03_and_keys, test_store_then_reset])
