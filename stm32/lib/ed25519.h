/* Ed25519 signature verification (RFC 8032 section 5.1.7, PureEdDSA: the message itself is signed,
 * no pre-hash inside the scheme). Verification only: the firmware holds public keys, never a
 * private one. Field and group arithmetic from Monocypher 4 (fetched at build time, see
 * scripts/fetch_monocypher.py); the hash is SHA-512 (sha512.h). The decisions on non-canonical and
 * small-order points are in docs/security.md, "Signature verification". */
#ifndef FOTA_ED25519_H
#define FOTA_ED25519_H

#include <stddef.h>
#include <stdint.h>

enum ed25519_result {
    ED25519_OK = 0,
    ED25519_BAD_SIGNATURE,  /* the equation does not hold, or R is not a canonical curve point */
    ED25519_NONCANONICAL_S, /* S >= L (the group order): a malleated or corrupt signature */
    ED25519_BAD_KEY,        /* the public key is no canonical curve point, or has small order */
};

/* Verify the 64-byte signature sig = R || S of msg[0..len) under the 32-byte public key pub.
 * Reads only public data; time varies with the inputs. msg may be NULL when len is 0 (with a
 * length it is ED25519_BAD_SIGNATURE). */
enum ed25519_result ed25519_verify(const uint8_t sig[64], const uint8_t pub[32], const uint8_t *msg, size_t len);

/* A short name of a result ("ok", "bad-signature", "noncanonical-s", "bad-key"). */
const char *ed25519_result_name(enum ed25519_result r);

#endif /* FOTA_ED25519_H */
