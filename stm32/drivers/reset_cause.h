/* Why the chip reset: RCC_CSR flags, read once and cleared (RMVF) by the bootloader. */
#ifndef FOTA_RESET_CAUSE_H
#define FOTA_RESET_CAUSE_H

#include <stdint.h>

/* Read the RCC_CSR reset flags (bits 25-31) and clear them with RMVF. */
uint32_t reset_cause_take(void);
/* Short name of the most specific cause: "iwdg", "wwdg", "soft", "lowpower", "por", "bor", "pin". */
const char *reset_cause_str(uint32_t flags);

#endif /* FOTA_RESET_CAUSE_H */
