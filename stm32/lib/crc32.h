/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32): link frames and journal records. */
#ifndef FOTA_CRC32_H
#define FOTA_CRC32_H

#include <stdint.h>
#include <stddef.h>

/* Continue a CRC: crc32_update(0, data, len) gives zlib's crc32(data). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif /* FOTA_CRC32_H */
