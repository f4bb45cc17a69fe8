/* Metadata journal in sector 11: append-only records (struct fota_meta_record, fota_image.h).
 * The valid record (magic and CRC) with the highest sequence wins; a torn record fails its CRC and
 * is skipped; appends go to the position after the last one that is not erased. When the sector is full,
 * journal_append compacts: see journal.c for the order that keeps a bootable device at any
 * power cut. */
#ifndef FOTA_JOURNAL_H
#define FOTA_JOURNAL_H

#include "flash_area.h"
#include "fota_image.h"

struct journal_state {
    int have_record;                 /* 0: no valid record in the sector */
    struct fota_meta_record latest;  /* valid when have_record */
    uint32_t next_pos;               /* offset after the last non-erased position (may be the area size) */
    uint32_t valid_records;
    uint32_t torn_records;           /* positions neither erased nor valid */
};

int journal_scan(const struct flash_area *fa, struct journal_state *st);
/* Fill seq (latest + 1), magic and CRC of rec and append it; compacts when full.
 * On success st describes the journal with rec as the latest record. */
int journal_append(const struct flash_area *fa, struct journal_state *st, struct fota_meta_record *rec);

#endif /* FOTA_JOURNAL_H */
