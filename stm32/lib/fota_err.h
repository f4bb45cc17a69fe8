/* One error enum for the firmware's shared modules. Small positive codes; 0 is success.
 * A lower layer's failure is translated once, at the layer boundary. */
#ifndef FOTA_ERR_H
#define FOTA_ERR_H

enum fota_err {
    FOTA_OK = 0,
    FOTA_E_ARG = 1,        /* argument out of range (address, length, alignment) */
    FOTA_E_LOCKED = 2,     /* flash controller stays locked (wrong key sequence) */
    FOTA_E_TIMEOUT = 3,    /* a bounded wait ran out (BSY, HSERDY, ...) */
    FOTA_E_FLASH = 4,      /* flash error flag set (WRPERR, PGAERR, PGPERR, PGSERR, OPERR) */
    FOTA_E_VERIFY = 5,     /* read-back after program differs */
    FOTA_E_NOT_ERASED = 6, /* programming over data that is not erased */
    FOTA_E_FULL = 7,       /* journal sector full (compaction needed) */
    FOTA_E_NOT_FOUND = 8,  /* no valid journal record */
    FOTA_E_IMAGE = 9,      /* image validation failed (see enum image_fault) */
};

#endif /* FOTA_ERR_H */
