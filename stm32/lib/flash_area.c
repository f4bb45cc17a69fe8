/* Flash areas over offsets, bounds-checked, on top of a flash_port (flash_area.h). The layout
 * comes from the generated fota_layout.h (host/stm32_fota/spec/layout.toml). */
#include "flash_area.h"
#include "crc32.h"
#include "fota_layout.h"

/* RM0090 table 5 (single bank, 1 MB): from the spec. */
static const struct fa_sector sectors[FOTA_SECTOR_COUNT] = FOTA_SECTOR_TABLE;

static const struct flash_area areas[] = {
    {FOTA_REGION_BOOTLOADER_ID, FOTA_REGION_BOOTLOADER_BASE, FOTA_REGION_BOOTLOADER_SIZE,
     FOTA_REGION_BOOTLOADER_FIRST_SECTOR, FOTA_REGION_BOOTLOADER_LAST_SECTOR},
    {FOTA_REGION_SLOT_A_ID, FOTA_REGION_SLOT_A_BASE, FOTA_REGION_SLOT_A_SIZE, FOTA_REGION_SLOT_A_FIRST_SECTOR,
     FOTA_REGION_SLOT_A_LAST_SECTOR},
    {FOTA_REGION_SLOT_B_ID, FOTA_REGION_SLOT_B_BASE, FOTA_REGION_SLOT_B_SIZE, FOTA_REGION_SLOT_B_FIRST_SECTOR,
     FOTA_REGION_SLOT_B_LAST_SECTOR},
    {FOTA_REGION_METADATA_ID, FOTA_REGION_METADATA_BASE, FOTA_REGION_METADATA_SIZE,
     FOTA_REGION_METADATA_FIRST_SECTOR, FOTA_REGION_METADATA_LAST_SECTOR},
};
#define AREA_COUNT (sizeof(areas) / sizeof(areas[0]))

static const struct flash_port *port;
struct fa_idle_hook fa_idle;

const struct fa_sector *fa_sector(uint32_t n)
{
    return n < FOTA_SECTOR_COUNT ? &sectors[n] : NULL;
}

void fa_init(const struct flash_port *p)
{
    port = p;
}

const struct flash_area *fa_get(uint8_t id)
{
    for (uint32_t i = 0; i < AREA_COUNT; i++) {
        if (areas[i].id == id) {
            return &areas[i];
        }
    }
    return NULL;
}

const struct flash_area *fa_slot(uint8_t slot)
{
    if (slot == 0u) {
        return fa_get(FOTA_REGION_SLOT_A_ID);
    }
    if (slot == 1u) {
        return fa_get(FOTA_REGION_SLOT_B_ID);
    }
    return NULL;
}

/* [off, off + len) inside the area, without overflow. */
static int in_bounds(const struct flash_area *fa, uint32_t off, size_t len)
{
    return fa != NULL && port != NULL && off <= fa->size && len <= (size_t)(fa->size - off);
}

int fa_read(const struct flash_area *fa, uint32_t off, void *dst, size_t len)
{
    if (!in_bounds(fa, off, len) || dst == NULL) {
        return FOTA_E_ARG;
    }
    if (len == 0u) {
        return FOTA_OK;
    }
    return port->read(fa->base + off, dst, len);
}

const void *fa_mapped(const struct flash_area *fa, uint32_t off, size_t len)
{
    if (!in_bounds(fa, off, len) || !port->mapped) {
        return NULL;
    }
    return (const void *)(uintptr_t)(fa->base + off);
}

int fa_crc(const struct flash_area *fa, uint32_t off, size_t len, uint32_t *crc)
{
    if (!in_bounds(fa, off, len) || crc == NULL || (off % 4u) != 0u || (len % 4u) != 0u) {
        return FOTA_E_ARG;
    }
    if (port->crc_words != NULL) {
        *crc = port->crc_words(fa->base + off, len / 4u);
        return FOTA_OK;
    }
    uint32_t c = CRC32_WORDS_INIT;
    uint8_t buf[256];
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < sizeof(buf) ? (uint32_t)(len - done) : (uint32_t)sizeof(buf);
        int rc = port->read(fa->base + off + done, buf, n);
        if (rc != FOTA_OK) {
            return rc;
        }
        c = crc32_words_update(c, buf, n / 4u);
        done += n;
    }
    *crc = c;
    return FOTA_OK;
}

int fa_write(const struct flash_area *fa, uint32_t off, const void *src, size_t len)
{
    if (!in_bounds(fa, off, len) || src == NULL || (off % 4u) != 0u || (len % 4u) != 0u) {
        return FOTA_E_ARG;
    }
    if (len == 0u) {
        return FOTA_OK;
    }
    /* The port checks each word against what flash holds (fa_overwrite_ok) as it programs: one
     * read of flash per word, in the same loop. */
    return port->program(fa->base + off, src, len / 4u);
}

/* Visit the sectors of the area that overlap [off, off + len); erase them when do_erase. */
static int walk_sectors(const struct flash_area *fa, uint32_t off, size_t len, int do_erase, uint32_t *count)
{
    *count = 0;
    if (len == 0u) {
        return FOTA_OK;
    }
    uint32_t start = fa->base + off;
    uint32_t end = start + (uint32_t)len; /* in_bounds checked: no overflow inside the 1 MB flash */
    for (uint32_t s = fa->first_sector; s <= fa->last_sector; s++) {
        uint32_t s_end = sectors[s].base + sectors[s].size;
        if (sectors[s].base < end && s_end > start) {
            (*count)++;
            if (do_erase) {
                int rc = port->erase_sector(s);
                if (rc != FOTA_OK) {
                    return rc;
                }
            }
        }
    }
    return FOTA_OK;
}

int fa_erase(const struct flash_area *fa, uint32_t off, size_t len)
{
    uint32_t count;
    if (!in_bounds(fa, off, len)) {
        return FOTA_E_ARG;
    }
    return walk_sectors(fa, off, len, 1, &count);
}

uint32_t fa_sectors_touched(const struct flash_area *fa, uint32_t off, size_t len)
{
    uint32_t count;
    if (!in_bounds(fa, off, len)) {
        return 0;
    }
    (void)walk_sectors(fa, off, len, 0, &count);
    return count;
}

int fa_is_erased(const struct flash_area *fa, uint32_t off, size_t len)
{
    uint8_t buf[64];
    if (!in_bounds(fa, off, len)) {
        return 0;
    }
    while (len > 0u) {
        size_t n = len < sizeof(buf) ? len : sizeof(buf);
        if (port->read(fa->base + off, buf, n) != FOTA_OK) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (buf[i] != 0xFFu) {
                return 0;
            }
        }
        off += (uint32_t)n;
        len -= n;
    }
    return 1;
}
