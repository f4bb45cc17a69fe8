/* Signed MCUboot test images in the RAM flash (mcuboot_fixture.c): an Ed25519 signer over
 * Monocypher's group arithmetic and sha512.c (RFC 8032 section 5.1.6, for the tests only: the
 * firmware never signs), two test keys, a key ring trusting the first, and an image writer. */
#ifndef FW_MCUBOOT_FIXTURE_H
#define FW_MCUBOOT_FIXTURE_H

#include <stdint.h>
#include "mcuboot.h"

struct signed_spec {
    uint8_t slot;          /* the slot the image is for (SLOT TLV, reset vector) */
    uint8_t ver[3];
    uint32_t build;
    uint32_t counter;      /* SEC_CNT */
    uint32_t payload;      /* bytes of the image body after the vector words; rounded to 8 */
    uint8_t key;           /* test key 0 (trusted) or 1 (not in the ring) */
};

/* The ring of the tests: test key 0 only. */
const struct keyring *fw_test_ring(void);
/* Public key and key hash of test key 0 or 1. */
const struct keyring_key *fw_test_key(uint8_t key);
/* Ed25519 signature of msg by test key 0 or 1. */
void fw_sign(uint8_t key, const uint8_t *msg, size_t len, uint8_t sig[64]);
/* Write a signed image for spec at the base of slot `where`; returns its total size. */
uint32_t fw_put_signed(uint8_t where, const struct signed_spec *spec);
/* After editing the signed part of the image in slot `slot` in RAM: recompute the SHA256 TLV and
 * the signature, so that only the edited field is wrong. */
void fw_resign(uint8_t slot);

#endif /* FW_MCUBOOT_FIXTURE_H */
