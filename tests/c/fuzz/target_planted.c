/* Fuzz target with a planted bug, to show the engine and the sanitizers find one (tests/c/test_fw_fuzz.py):
 * after a 32-bit magic (MCUboot's image magic), a TLV walker (type 1 byte, flags 1 byte, length 2
 * bytes little-endian, value) that checks each length against the input, except for type 0x7E, whose
 * last value byte it reads unchecked. The seed holds a well-formed entry of that type but a wrong
 * magic: random mutation alone would practically never guess the 32 bits; the constant the code
 * compares with (trace-cmp) is in the engine's dictionary. */
#include "fuzz.h"

#define MAGIC 0x96F3B83Du

static volatile uint8_t sink;

void fuzz_target_init(void) {}

void fuzz_target_seeds(void (*add)(const uint8_t *data, size_t len))
{
    static const uint8_t seed[] = {0, 0, 0, 0, 0x01, 0x00, 0x02, 0x00, 0xAA, 0xBB, 0x7E, 0x00, 0x03, 0x00, 'a', 'b', 'c'};
    add(seed, sizeof(seed));
}

void fuzz_target(const uint8_t *data, size_t len)
{
    if (len < 4u) {
        return;
    }
    uint32_t magic = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    if (magic != MAGIC) {
        return;
    }
    size_t off = 4;
    while (off + 4u <= len) {
        uint8_t type = data[off];
        size_t n = (size_t)data[off + 2] | (size_t)data[off + 3] << 8;
        if (type == 0x7Eu && n > 0u) {
            sink = data[off + 4u + n - 1u]; /* the bug: n is not checked against len */
        }
        if (n > len - off - 4u) {
            return;
        }
        off += 4u + n;
    }
}
