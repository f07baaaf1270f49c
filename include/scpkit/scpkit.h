/* scpkit: the whole public API of the engine library (libscpkit, which
 * needs libcrypto only) in one include, as <sodium.h> or <openssl/ssl.h>:
 * status codes, buffers, APDU and BER-TLV codecs, the crypto primitives,
 * the SCP03, SCP02, SCP11 and ISO 7816-4 secure-messaging engines,
 * GlobalPlatform key data and diversification, transports and the secure
 * channel over them. The PC/SC transport (scp_pcsc_*, in transport.h) is
 * in libscpkit-pcsc, the virtual card (card.h) in libscpkit-card, the
 * keystore (keystore.h) in the scpkit CLI; include those headers
 * yourself and link those libraries (pkg-config scpkit-pcsc, scpkit-card;
 * CMake components pcsc, card). */
#ifndef SCPKIT_SCPKIT_H
#define SCPKIT_SCPKIT_H

#include "scpkit/rc.h"
#include "scpkit/buf.h"
#include "scpkit/apdu.h"
#include "scpkit/tlv.h"
#include "scpkit/crypto.h"
#include "scpkit/des.h"
#include "scpkit/ec.h"
#include "scpkit/cert.h"
#include "scpkit/scp03.h"
#include "scpkit/scp02.h"
#include "scpkit/scp11.h"
#include "scpkit/iso7816sm.h"
#include "scpkit/gp.h"
#include "scpkit/transport.h"
#include "scpkit/channel.h"

/* The version of these headers (CMake checks at configure time that it is
 * project(VERSION) in CMakeLists.txt). */
#define SCP_VERSION_MAJOR 0
#define SCP_VERSION_MINOR 1
#define SCP_VERSION_PATCH 0
#define SCP_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/** The library's version, "MAJOR.MINOR.PATCH": the copy built into
 *  libscpkit, which can differ from SCP_VERSION_STRING in the headers a
 *  program was compiled with. Never NULL; needs nothing. */
const char *scp_version(void);

#ifdef __cplusplus
}
#endif
#endif
