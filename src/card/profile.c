/* scpkit card: the card profiles. A profile is what a card of a given
 * make does where GlobalPlatform leaves a choice or a product departs
 * from it; every place in src/card/ that behaves differently per profile
 * asks this table, never the profile's name. Profiles for other secure
 * channels (SCP11, SCP02) are added here as new rows with new ids; an id,
 * once stored in card state files, is never reused. */
#include <string.h>
#include "card/internal.h"

static const card_profile profiles[] = {
    {
        /* YubiKey 5.7 Security Domain (seed 002): random challenge, R-MAC
         * and R-ENC (GPShell -scpimpl 96 = i 60), level 33 only, AES-128
         * only; the factory set KVN FF goes with the first PUT KEY; GET
         * DATA answers yubikit's CLA 00 in the bare form it parses
         * (yubikit securitydomain.py: Tlv.unpack(0x73, ...), C0 entries
         * one by one) and CLA 80 in the GP form, as a retail 5.7.4 does
         * (PeculiarVentures/scp trace) */
        .id = CARD_PROFILE_YUBIKEY,
        .name = "yubikey",
        .scp = 3,
        .i = 0x60,
        .min_level = 0x33,
        .aes128_only = 1,
        .first_put_replaces_factory = 1,
        .get_data_bare_cla00 = 1,
    },
    {
        /* a GP 2.3 card: S16, pseudo-random challenge, R-MAC, R-ENC,
         * every level i allows, AES-128/192/256 */
        .id = CARD_PROFILE_GP23,
        .name = "gp23",
        .scp = 3,
        .i = 0x71,
        .min_level = 0,
    },
    {
        /* a JavaCard 2.2 / GP 2.1.1 card (scp02_card.c): SCP02 i = 55
         * (explicit initiation, C-MAC on the modified APDU, ICV
         * encryption, pseudo-random card challenge), 3DES key sets of 16
         * bytes (AES-128 sets too, as the move to SCP03); like such cards
         * in the field, the first PUT KEY replaces the initial set KVN FF */
        .id = CARD_PROFILE_SCP02,
        .name = "scp02",
        .scp = 2,
        .i = 0x55,
        .min_level = 0,
        .aes128_only = 1,
        .first_put_replaces_factory = 1,
    },
};

const card_profile *card_profile_by_id(uint8_t id)
{
    for (size_t k = 0; k < sizeof(profiles) / sizeof(profiles[0]); k++)
        if (profiles[k].id == id)
            return &profiles[k];
    return NULL;
}

const card_profile *card_profile_by_name(const char *name)
{
    for (size_t k = 0; name != NULL && k < sizeof(profiles) / sizeof(profiles[0]); k++)
        if (strcmp(profiles[k].name, name) == 0)
            return &profiles[k];
    return NULL;
}

const card_profile *card_profile_of(const card_state *st)
{
    /* the loader refuses unknown ids, so this never fails for a loaded
     * or new state; gp23 is the safe answer if it ever did */
    const card_profile *p = card_profile_by_id(st->profile);
    return p != NULL ? p : &profiles[1];
}
