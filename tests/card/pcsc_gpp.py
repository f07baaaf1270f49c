"""GlobalPlatformPro's expectations (martinpaljak/GlobalPlatformPro:
library/.../GPSession.java, GPData.java, CPLC.java, GPKeyInfo.java)
checked against the virtual card's gp23 profile (S16, pseudo-random
challenge) through pcscd + vpcd:

- GPSession.discover: SELECT 00 A4 04 00 00 (no AID, Le 256) answers an
  FCI 6F with a non-empty 84 (the ISD's AID) and A5 with 9F65 (block size);
- card recognition data (GET DATA 66, CLA 80): 66 { 73 { 06 = GP OID
  2A864886FC6B01, 60 { 06 version } ... } }, the version one of those
  GPData.oid2version knows (GP 2.1.1, 2.2, 2.2.1: it throws on others);
  64 { 06 } the SCP OID of 9 bytes under 1.2.840.114283.4;
- CPLC (80 CA 9F 7F 00): 9F 7F 2A + 42 bytes; every date field parses as
  CPLC.toRelativeDate does (BCD YDDD, a valid day of that year);
- key information (80 CA 00 E0 00): E0 { C0 04 id kvn 88 len ... };
- openSecureChannel S8/S16 auto-detection: an 8-byte challenge on an S16
  card answers 6700 (not 6A80), then the 16-byte challenge works;
  EXTERNAL AUTHENTICATE 84 82 01 00 (MAC, GPP's default), no Le;
- PUT KEY in GPP's form (key type 88, a key-length byte: 88 11 10 ct 03
  kcv), answered KVN | kcv x 3;
- GET STATUS 80 F2 80 02 (TLV form) answers E3 { 4F, 9F70, C5 } with only
  the privileges the card has (no authorized/delegated management, DAP,
  receipts, CVM), and INSTALL/LOAD are not claimed: 6D00.
Usage: pcsc_gpp.py READER (a fresh `card init --profile gp23`)."""

import datetime
import os

from pcsc_host import FACTORY_KEY, Reader, Scp03, check, encode, h, main, tlv_list, _aes_ecb, _cbc

GP_VERSIONS = {  # GPData.oid2version
    bytes.fromhex("2A864886FC6B02020101"): "GP211",
    bytes.fromhex("2A864886FC6B020202"): "GP22",
    bytes.fromhex("2A864886FC6B02020201"): "GP221",
}
CPLC_DATES = [("OperatingSystemReleaseDate", 6), ("ICFabricationDate", 10),
              ("ICModulePackagingDate", 20), ("ICEmbeddingDate", 24),
              ("ICPrePersonalizationEquipmentDate", 28), ("ICPersonalizationDate", 36)]


def cplc_date(v, today):
    """CPLC.toRelativeDate: None for 0000/FFFF, else a date or a failure."""
    sv = h(v)
    check(all(c in "0123456789" for c in sv), "CPLC date %s is not BCD" % sv)
    y, d = int(sv[0]), int(sv[1:])
    base = 2010 if (y >= today.year % 10 and d > today.timetuple().tm_yday) else 2020
    return datetime.date(base + y, 1, 1) + datetime.timedelta(days=d - 1) if 1 <= d <= (
        366 if (base + y) % 4 == 0 else 365) else check(False, "CPLC date %s: day %d" % (sv, d))


def test_discover_and_data(name):
    r = Reader(name)
    data, sw = r.send(bytes.fromhex("00A4040000"))
    check(sw == 0x9000, "discover SELECT: %04X" % sw)
    fci = dict(tlv_list(data))
    check(0x6F in fci, "no FCI 6F")
    inner = dict(tlv_list(fci[0x6F]))
    check(len(inner.get(0x84, b"")) > 0, "FCI without the ISD AID in 84")
    check(0x9F65 in dict(tlv_list(inner.get(0xA5, b""))), "FCI A5 without 9F65")
    data, sw = r.send(bytes.fromhex("80CA006600"))
    check(sw == 0x9000, "GET DATA 66: %04X" % sw)
    t = tlv_list(data)
    check(len(t) == 1 and t[0][0] == 0x66, "card data not in 66")
    crd = dict(tlv_list(dict(tlv_list(t[0][1]))[0x73]))
    check(crd[0x06] == bytes.fromhex("2A864886FC6B01"), "GP OID")
    ver = dict(tlv_list(crd[0x60]))[0x06]
    check(ver in GP_VERSIONS, "GP version OID %s unknown to GPData.oid2version" % h(ver))
    scp = dict(tlv_list(crd[0x64]))[0x06]
    check(len(scp) == 9 and scp[:8] == bytes.fromhex("2A864886FC6B0403") and scp[8] == 0x71,
          "SCP OID %s" % h(scp))
    data, sw = r.send(bytes.fromhex("80CA9F7F00"))
    check(sw == 0x9000 and len(data) == 45 and data[:3] == bytes.fromhex("9F7F2A"), "CPLC")
    today = datetime.date.today()
    for field, off in CPLC_DATES:
        d = cplc_date(data[3 + off: 5 + off], today)
        check(abs((d - today).days) <= 366, "%s %s is not near today" % (field, d))
    data, sw = r.send(bytes.fromhex("80CA00E000"))
    check(sw == 0x9000, "GET DATA E0: %04X" % sw)
    t = tlv_list(data)
    check(len(t) == 1 and t[0][0] == 0xE0, "key information not in E0")
    for tag, v in tlv_list(t[0][1]):
        check(tag == 0xC0 and len(v) == 4 and v[2] == 0x88 and v[3] in (16, 24, 32),
              "GPKeyInfo C0 entry %s" % h(v))
    r.close()


def open_channel(r, level):
    s8 = Scp03(FACTORY_KEY, FACTORY_KEY, FACTORY_KEY, s16=False)
    _, sw = r.send(encode(0x80, 0x50, 0x00, 0x00, s8.iu_data(), 0))
    check(sw == 0x6700, "an 8-byte challenge on an S16 card: %04X, GPP needs 6700" % sw)
    s = Scp03(FACTORY_KEY, FACTORY_KEY, FACTORY_KEY, s16=True)
    data, sw = r.send(encode(0x80, 0x50, 0x00, 0x00, s.iu_data(), 0))
    check(sw == 0x9000 and len(data) == 48, "S16 IU: %04X, %d bytes" % (sw, len(data)))
    s.iu_response(data)
    _, sw = r.send(s.external_authenticate(level))
    check(sw == 0x9000, "EXTERNAL AUTHENTICATE level %02X: %04X" % (level, sw))
    return s


def send(r, s, cla, ins, p1, p2, data=b"", le=0):
    resp, sw = r.send(s.wrap(cla, ins, p1, p2, data, le))
    return s.unwrap(resp, sw), sw


def test_channel_put_key_status(name):
    r = Reader(name)
    r.send(bytes.fromhex("00A4040008A00000015100000000"))
    s = open_channel(r, 0x01)
    new = os.urandom(16)
    kcv = _aes_ecb(new, b"\1" * 16)[:3]
    body = bytes([0x05]) + (bytes([0x88, 0x11, 0x10]) + _cbc(FACTORY_KEY, b"\0" * 16, new, True)
                            + b"\x03" + kcv) * 3
    data, sw = send(r, s, 0x80, 0xD8, 0x00, 0x81, body)
    check(sw == 0x9000 and data == bytes([0x05]) + kcv * 3, "PUT KEY (88 11 10): %04X %s" % (sw, h(data)))
    data, sw = send(r, s, 0x80, 0xF2, 0x80, 0x02, bytes.fromhex("4F00"))
    check(sw == 0x9000, "GET STATUS: %04X" % sw)
    e3 = dict(tlv_list(dict(tlv_list(data))[0xE3]))
    priv = e3[0xC5]
    check(priv[0] & 0x80, "the ISD is not a security domain")
    forbidden = [(0, 0x40, "DAP verification"), (0, 0x20, "delegated management"),
                 (0, 0x02, "CVM management"), (0, 0x01, "mandated DAP"),
                 (1, 0x80, "trusted path"), (1, 0x40, "authorized management"),
                 (1, 0x20, "token verification"), (1, 0x10, "global delete"),
                 (2, 0x80, "receipt generation"), (2, 0x40, "ciphered load file data block")]
    for byte, bit, what in forbidden:
        check(not priv[byte] & bit, "privilege claimed but not implemented: %s" % what)
    for ins, what in ((0xE6, "INSTALL"), (0xE8, "LOAD")):
        _, sw = send(r, s, 0x80, ins, 0x02 if ins == 0xE6 else 0x80, 0x00, b"\0")
        check(sw == 0x6D00, "%s answers %04X" % (what, sw))
    r.close()
    # the new set opens a channel (S16 still)
    r = Reader(name)
    r.send(bytes.fromhex("00A4040008A00000015100000000"))
    s = Scp03(new, new, new, s16=True)
    data, sw = r.send(encode(0x80, 0x50, 0x05, 0x00, s.iu_data(), 0))
    check(sw == 0x9000, "IU with KVN 05: %04X" % sw)
    s.iu_response(data)
    _, sw = r.send(s.external_authenticate(0x03))
    check(sw == 0x9000, "EA with the new set: %04X" % sw)
    r.close()


if __name__ == "__main__":
    main([test_discover_and_data, test_channel_put_key_status])
