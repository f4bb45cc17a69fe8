/* The option bytes as the chip loaded them (FLASH_OPTCR, RM0090 section 3.9.10). */
#ifndef FOTA_OPTION_BYTES_H
#define FOTA_OPTION_BYTES_H

#include <stdint.h>

/* 1 when WDG_SW is 0: the IWDG runs from reset and cannot be stopped (RM0090 section 19.3.2). */
int option_bytes_hw_watchdog(uint32_t optcr);
/* One log line: "opt wdg hw|sw bor off|1|2|3 rdp 0|1|2 wrp 0x<protected sectors>". */
void option_bytes_log(uint32_t optcr);

#endif /* FOTA_OPTION_BYTES_H */
