/* Signed MCUboot test images (mcuboot_fixture.h). */
#include "mcuboot_fixture.h"
#include <string.h>
#include "fixture.h"
#include "fota_layout.h"
#include "monocypher.h"
#include "sha256.h"
#include "sha512.h"

/* DER SubjectPublicKeyInfo of an Ed25519 key, before its 32 raw bytes (RFC 8410). */
static const uint8_t SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static struct keyring_key keys[2];
static uint8_t expanded[2][64]; /* SHA-512 of each seed: scalar half and prefix half */
static int ready;
static uint8_t slot_key[2]; /* the test key that signs the image of each slot (fw_resign) */

static void setup(void)
{
    if (ready) {
        return;
    }
    for (uint8_t k = 0; k < 2; k++) {
        uint8_t seed[32];
        memset(seed, 0x5A + k, sizeof(seed));
        struct sha512_ctx c;
        sha512_init(&c);
        sha512_update(&c, seed, sizeof(seed));
        sha512_final(&c, expanded[k]);
        uint8_t a[32];
        crypto_eddsa_trim_scalar(a, expanded[k]);
        memcpy(expanded[k], a, 32);
        crypto_eddsa_scalarbase(keys[k].pub, a);
        struct sha256_ctx h;
        sha256_init(&h);
        sha256_update(&h, SPKI_PREFIX, sizeof(SPKI_PREFIX));
        sha256_update(&h, keys[k].pub, 32);
        sha256_final(&h, keys[k].hash);
    }
    ready = 1;
}

const struct keyring_key *fw_test_key(uint8_t key)
{
    setup();
    return &keys[key & 1u];
}

const struct keyring *fw_test_ring(void)
{
    static struct keyring ring;
    setup();
    ring.keys = keys;
    ring.count = 1;
    return &ring;
}

static void reduce_hash(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                        const uint8_t *msg, size_t len)
{
    uint8_t h[64];
    struct sha512_ctx c;
    sha512_init(&c);
    sha512_update(&c, a, alen);
    if (b != NULL) {
        sha512_update(&c, b, blen);
    }
    sha512_update(&c, msg, len);
    sha512_final(&c, h);
    crypto_eddsa_reduce(out, h);
}

void fw_sign(uint8_t key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    setup();
    key &= 1u;
    uint8_t r[32];
    uint8_t k[32];
    reduce_hash(r, expanded[key] + 32, 32, NULL, 0, msg, len);          /* r = H(prefix || M) */
    crypto_eddsa_scalarbase(sig, r);                                    /* R = [r]B */
    reduce_hash(k, sig, 32, keys[key].pub, 32, msg, len);              /* k = H(R || A || M) */
    crypto_eddsa_mul_add(sig + 32, k, expanded[key], r);                /* S = k * a + r */
}

static uint8_t *put_tlv(uint8_t *p, uint16_t type, const void *value, uint16_t len)
{
    struct fota_image_tlv t = {.tl_type = type, .tl_len = len};
    memcpy(p, &t, sizeof(t));
    memcpy(p + sizeof(t), value, len);
    return p + sizeof(t) + len;
}

uint32_t fw_put_signed(uint8_t where, const struct signed_spec *spec)
{
    uint8_t *m = fw_slot_mem(where);
    uint32_t base = fa_slot(spec->slot)->base;
    uint32_t body = (8u + spec->payload + 7u) & ~7u;
    memset(m, 0, FOTA_IMAGE_HDR_SIZE);
    uint32_t sp = FOTA_SRAM_BASE + FOTA_SRAM_SIZE;
    uint32_t entry = base + FOTA_IMAGE_HDR_SIZE + 0x41u; /* inside the body, Thumb bit set */
    memcpy(m + FOTA_IMAGE_HDR_SIZE, &sp, 4);
    memcpy(m + FOTA_IMAGE_HDR_SIZE + 4, &entry, 4);
    for (uint32_t i = 8; i < body; i++) {
        m[FOTA_IMAGE_HDR_SIZE + i] = (uint8_t)(i * 7u + spec->build);
    }
    uint8_t *p = m + FOTA_IMAGE_HDR_SIZE + body;
    struct fota_image_tlv_info prot = {.ti_magic = FOTA_IMAGE_TLV_PROT_INFO_MAGIC, .ti_tlv_tot = FOTA_IMAGE_PROT_TLV_SIZE};
    memcpy(p, &prot, sizeof(prot));
    p = put_tlv(p + sizeof(prot), FOTA_IMAGE_TLV_SEC_CNT, &spec->counter, 4);
    p = put_tlv(p, FOTA_IMAGE_TLV_SLOT, &base, 4);
    struct fota_image_header h = {
        .ih_magic = FOTA_IMAGE_MAGIC,
        .ih_hdr_size = FOTA_IMAGE_HDR_SIZE,
        .ih_protect_tlv_size = FOTA_IMAGE_PROT_TLV_SIZE,
        .ih_img_size = body,
        .ih_ver_major = spec->ver[0],
        .ih_ver_minor = spec->ver[1],
        .ih_ver_revision = spec->ver[2],
        .ih_ver_build = spec->build,
    };
    memcpy(m, &h, sizeof(h));
    struct fota_image_tlv_info info = {.ti_magic = FOTA_IMAGE_TLV_INFO_MAGIC,
                                       .ti_tlv_tot = FOTA_IMAGE_TLV_AREA_SIZE - FOTA_IMAGE_PROT_TLV_SIZE};
    memcpy(p, &info, sizeof(info));
    p += sizeof(info);
    uint8_t zero[64] = {0};
    p = put_tlv(p, FOTA_IMAGE_TLV_SHA256, zero, 32);
    p = put_tlv(p, FOTA_IMAGE_TLV_KEYHASH, fw_test_key(spec->key)->hash, 32);
    p = put_tlv(p, FOTA_IMAGE_TLV_ED25519, zero, 64);
    slot_key[where & 1u] = spec->key & 1u;
    fw_resign(where);
    return (uint32_t)(p - m);
}

void fw_resign(uint8_t slot)
{
    uint8_t *m = fw_slot_mem(slot);
    struct fota_image_header h;
    memcpy(&h, m, sizeof(h));
    uint32_t signed_size = FOTA_IMAGE_HDR_SIZE + h.ih_img_size + h.ih_protect_tlv_size;
    uint8_t *tlvs = m + signed_size + sizeof(struct fota_image_tlv_info);
    uint8_t *sha = tlvs + sizeof(struct fota_image_tlv);
    uint8_t *sig = sha + 32 + sizeof(struct fota_image_tlv) + 32 + sizeof(struct fota_image_tlv);
    uint8_t key = slot_key[slot & 1u];
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, m, signed_size);
    sha256_final(&c, sha);
    fw_sign(key, sha, 32, sig);
}
