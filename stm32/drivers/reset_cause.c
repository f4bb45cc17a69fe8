/* Reset flags (RM0090 section 7.3.21 RCC_CSR). A power-on reset also sets PINRSTF and BORRSTF,
 * and every internal reset pulses NRST (PINRSTF), so the most specific flag is reported. */
#include "reset_cause.h"
#include "stm32f407_regs.h"

#define RESET_FLAGS_MASK 0xFE000000u

uint32_t reset_cause_take(void)
{
    uint32_t flags = RCC_CSR & RESET_FLAGS_MASK;
    RCC_CSR |= RCC_CSR_RMVF;
    return flags;
}

const char *reset_cause_str(uint32_t flags)
{
    if (flags & RCC_CSR_IWDGRSTF) {
        return "iwdg";
    }
    if (flags & RCC_CSR_WWDGRSTF) {
        return "wwdg";
    }
    if (flags & RCC_CSR_SFTRSTF) {
        return "soft";
    }
    if (flags & RCC_CSR_LPWRRSTF) {
        return "lowpower";
    }
    if (flags & RCC_CSR_PORRSTF) {
        return "por";
    }
    if (flags & RCC_CSR_BORRSTF) {
        return "bor";
    }
    if (flags & RCC_CSR_PINRSTF) {
        return "pin";
    }
    return "none";
}
