# Recover the two Samsung test CA public keys (CA-KLOC, CA-KLCC; not
# published) from the published ECDSA-SHA256 signatures in
# tests/vectors/scp11_openscp.txt: each signature gives two candidate keys;
# the key common to every signature of one CA is the CA key. Usage:
#   python3 tests/scp11/recover_ca_keys.py tests/vectors/scp11_openscp.txt
# The GP certificates are hashed as the data objects before 5F37; that both
# GP and X.509 signatures meet in one key confirms that reading.
import hashlib,re,sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
p=0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
a=p-3; b=0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
n=0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
G=(0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296,0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5)
def add(P,Q):
    if P is None: return Q
    if Q is None: return P
    if P[0]==Q[0] and (P[1]+Q[1])%p==0: return None
    if P==Q: l=(3*P[0]*P[0]+a)*pow(2*P[1],-1,p)%p
    else: l=(Q[1]-P[1])*pow(Q[0]-P[0],-1,p)%p
    x=(l*l-P[0]-Q[0])%p; return (x,(l*(P[0]-x)-P[1])%p)
def mul(k,P):
    R=None
    while k:
        if k&1: R=add(R,P)
        P=add(P,P); k>>=1
    return R
def recover(z,r,s):
    out=[]
    x=r; y2=(x**3+a*x+b)%p; y=pow(y2,(p+1)//4,p)
    for yy in (y,p-y):
        R=(x,yy); ri=pow(r,-1,n)
        Q=mul(ri, add(mul(s,R), mul((-z)%n,G)))
        out.append(Q)
    return out
recs=open(sys.argv[1]).read()
def field(name,k=0):
    return [bytes.fromhex(m) for m in re.findall(r'^%s = (\S+)'%name,recs,re.M)]
def x509sig(der):
    c=x509.load_der_x509_certificate(der)
    r,s=decode_dss_signature(c.signature); z=int.from_bytes(hashlib.sha256(c.tbs_certificate_bytes).digest(),'big')
    return z,r,s,c
def gpsig(der):
    # 7F21 81 E1 <body>
    body=der[4:]; i=body.index(b'\x5f\x37'); tbs=body[:i]; sig=body[i+3:]
    r,s=decode_dss_signature(sig); z=int.from_bytes(hashlib.sha256(tbs).digest(),'big'); return z,r,s
oce=field('oce_cert')
cands=None
for d in oce:
    if d[0]==0x30: z,r,s,c=x509sig(d)
    else: z,r,s=gpsig(d)
    cs=set(recover(z,r,s)); cands=cs if cands is None else cands&cs
print('KLOC',len(cands),[("04%064x%064x"%q) for q in cands])
# KLCC: SD certs in get_data
gd=re.findall(r'^get_data_rapdu = (\S+)',recs,re.M)
# rebuild stores per record
stores=[];cur=b''
for block in recs.split('[scp11]')[1:]:
    d=b''.join(bytes.fromhex(x)[:-2] for x in re.findall(r'^get_data_rapdu = (\S+)',block,re.M))
    stores.append(d)
cands=None
for st in stores:
    body=st[5:] if st[2]==0x82 else st[4:]
    if body[0]==0x30: z,r,s,c=x509sig(body)
    else: z,r,s=gpsig(body)
    cs=set(recover(z,r,s)); cands=cs if cands is None else cands&cs
print('KLCC',len(cands),[("04%064x%064x"%q) for q in cands])
