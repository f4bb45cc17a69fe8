/* The option bytes (RM0090 section 3.7.1, FLASH_OPTCR section 3.9.10): read, never written by the
 * firmware (`invoke flash-stm32 --set-options` writes them through the programmer).
 *
 * - WDG_SW = 0 (hardware watchdog): the IWDG runs from every reset at /4 with RLR 0xFFF, 4096 x 4
 *   LSI periods, 0.35-0.96 s over the LSI's 17-47 kHz (DS8626 table 40), shorter than one 128 KB
 *   sector erase (2 s at most, DS8626 table 42). The bootloader widens it at once (iwdg_start).
 * - BOR level: off lets the chip run down to 1.8 V, where x32 programming (2.7-3.6 V, RM0090
 *   table 7) is not specified; level 3 (2.7 V) holds it in reset instead.
 * - nWRP, RDP: reported, so a board that is protected (or not) says so on its first line. */
#include "option_bytes.h"
#include "log.h"
#include "stm32f407_regs.h"

int option_bytes_hw_watchdog(uint32_t optcr)
{
    return (optcr & FLASH_OPTCR_WDG_SW) == 0u;
}

void option_bytes_log(uint32_t optcr)
{
    static const char *const bor[] = {"3", "2", "1", "off"};
    uint32_t rdp = (optcr >> FLASH_OPTCR_RDP_SHIFT) & FLASH_OPTCR_RDP_MASK;
    log_begin();
    log_str("opt wdg ");
    log_str(option_bytes_hw_watchdog(optcr) ? "hw" : "sw");
    log_str(" bor ");
    log_str(bor[(optcr >> FLASH_OPTCR_BOR_LEV_SHIFT) & FLASH_OPTCR_BOR_LEV_MASK]);
    log_str(" rdp ");
    log_u32(rdp == 0xAAu ? 0u : rdp == 0xCCu ? 2u : 1u);
    log_str(" wrp ");
    log_hex32(~(optcr >> FLASH_OPTCR_NWRP_SHIFT) & FLASH_OPTCR_NWRP_MASK);
    log_end();
}
