/* scpkit: bounded BER-TLV (ISO/IEC 7816-4 / X.690 subset used by
 * GlobalPlatform): tags of 1 to 3 bytes, definite lengths of up to 3
 * length bytes (81 xx, 82 xx xx, 83 xx xx xx). A value never runs past
 * its parent. */
#ifndef SCPKIT_TLV_H
#define SCPKIT_TLV_H

#include <stddef.h>
#include <stdint.h>
#include "scpkit/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scp_tlv {
    uint32_t tag;        /* the tag bytes as a big-endian number, e.g. 0x9F7F */
    const uint8_t *val;  /* borrowed */
    size_t len;
    uint8_t constructed; /* b6 of the first tag byte */
} scp_tlv;

/* Read the next TLV from r. Returns 1 when one was read, 0 at the end of
 * the input, or a negative scp_rc (SCP_E_TRUNCATED when a length runs past
 * the parent, SCP_E_FORMAT for an invalid tag or length form). */
SCP_MUST_CHECK int scp_tlv_next(scp_rd *r, scp_tlv *out);
/* Find the first TLV with tag among the siblings in p..p+len.
 * Returns 1 found, 0 not found, or an error. */
SCP_MUST_CHECK int scp_tlv_find(const uint8_t *p, size_t len, uint32_t tag, scp_tlv *out);
/* Walk a path of nested tags, e.g. {0x66, 0x73, 0x64}. */
SCP_MUST_CHECK int scp_tlv_find_path(const uint8_t *p, size_t len, const uint32_t *tags,
                                     size_t ntags, scp_tlv *out);

/* Append a BER-TLV tag (1 to 3 bytes, from the big-endian number). A
 * full buffer sets w's sticky error (see scp_wr_done). */
void scp_tlv_put_tag(scp_wr *w, uint32_t tag);
/* Append a BER-TLV length (1 to 4 bytes: xx, 81 xx, 82 xx xx, 83 xx xx
 * xx); a full buffer sets w's sticky error, a length over 0xFFFFFF sets
 * it to SCP_E_ARG. */
void scp_tlv_put_len(scp_wr *w, size_t len);
/* Append tag | length | len bytes of val; a full buffer sets w's sticky
 * error (the TLV may then be partly written: check scp_wr_done). */
void scp_tlv_put(scp_wr *w, uint32_t tag, const uint8_t *val, size_t len);

/* Nested writing: begin reserves room for the longest length form; end
 * fills in the real length and closes the gap. */
typedef struct scp_tlv_mark {
    size_t len_pos;
} scp_tlv_mark;
/* Open a constructed TLV: writes the tag and reserves the longest length
 * form; returns the mark scp_tlv_end needs. Errors go to w's sticky error. */
scp_tlv_mark scp_tlv_begin(scp_wr *w, uint32_t tag);
/* Close the TLV opened at m: writes its real length and moves the value
 * down over the unused length bytes. Errors go to w's sticky error. */
void scp_tlv_end(scp_wr *w, scp_tlv_mark m);

#ifdef __cplusplus
}
#endif
#endif
