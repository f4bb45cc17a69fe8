/* The key ring (keyring.h) from the build's generated table. */
#include "keyring.h"
#include "fota_keyring.h"

static const struct keyring_key keys[] = FOTA_KEYRING_KEYS;

_Static_assert(sizeof(keys) / sizeof(keys[0]) >= 1u, "the key ring holds at least one key");

const struct keyring fota_keyring = {keys, sizeof(keys) / sizeof(keys[0])};
