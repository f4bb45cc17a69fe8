/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32): link frames and journal records. */
#ifndef FOTA_CRC32_H
#define FOTA_CRC32_H

#include <stdint.h>
#include <stddef.h>

/* Continue a CRC: crc32_update(0, data, len) gives zlib's crc32(data). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

/* What the STM32 CRC calculation unit computes (RM0090 section 4.3): polynomial 0x04C11DB7,
 * MSB first, no reflection, no final XOR, one 32-bit word at a time (CRC-32/MPEG-2 of each word's
 * big-endian bytes). Start from CRC32_WORDS_INIT (the unit's reset value); words are read from
 * memory as little-endian, as the CPU loads them. */
#define CRC32_WORDS_INIT 0xFFFFFFFFu
uint32_t crc32_words_update(uint32_t crc, const void *data, size_t words);

/* One word of crc32_words_update, inline (usable from SRAM code while the flash programs). */
static inline __attribute__((always_inline)) uint32_t crc32_word_step(uint32_t crc, uint32_t word)
{
    crc ^= word;
    for (int bit = 0; bit < 32; bit++) {
        crc = (crc & 0x80000000u) != 0u ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

#endif /* FOTA_CRC32_H */
