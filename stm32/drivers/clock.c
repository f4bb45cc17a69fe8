/* Clock tree set-up (RM0090 section 6.3 and 7.3). */
#include "clock.h"
#include "fota_err.h"
#include "stm32f407_regs.h"
#include "wait.h"

/* 168 MHz: VCO in = 2 MHz (M; RM0090 section 7.3.2 recommends 2 MHz to limit PLL jitter), VCO out
 * = 336 MHz (N), SYSCLK = VCO / 2 (P), 48 MHz for USB (Q). */
#define PLL_M_HSE 4u /* 8 MHz HSE / 4 */
#define PLL_M_HSI 8u /* 16 MHz HSI / 8 */
#define PLL_N 168u
#define PLL_P_DIV2 0u
#define PLL_Q 7u
#define SYSCLK_PLL_HZ 168000000u
#define HSI_HZ 16000000u
/* 5 wait states at 168 MHz and 2.7-3.6 V (RM0090 table 10). */
#define FLASH_LATENCY_168MHZ 5u

/* Bounds: HSE start-up 10 ms, five times the 2 ms typical of DS8626 table 37 (tSU(HSE), 8 MHz
 * crystal; no maximum given), as a time (see hse_ready); PLL lock 100 us typical per datasheet:
 * 2 ms; clock switch within a few cycles: 1 ms. */
#define HSE_STARTUP_US 10000u
#define HSE_POLL_US 100u
#define PLL_LOCK_US 2000u
#define SWITCH_US 1000u

/* ES0182 (STM32F40x errata), "ART Accelerator prefetch queue instruction is not supported": the
 * prefetch must stay off on revision A (DBGMCU_IDCODE REV_ID 0x1000, RM0090 section 38.6.1). */
static int prefetch_allowed(void)
{
    return (DBGMCU_IDCODE >> DBGMCU_IDCODE_REV_SHIFT) != DBGMCU_REV_A;
}

/* Back to the HSI without any bus above its limit (RM0090 section 7.3.3): SYSCLK switches first,
 * while the prescalers still divide, and only once SWS shows the HSI do they go to /1. */
static void to_hsi(void)
{
    RCC_CFGR &= ~(RCC_CFGR_SW_MASK << RCC_CFGR_SW_SHIFT);
    (void)wait_reg(&RCC_CFGR, RCC_CFGR_SWS_MASK << RCC_CFGR_SWS_SHIFT, RCC_CFGR_SW_HSI << RCC_CFGR_SWS_SHIFT,
                   SWITCH_US);
    RCC_CFGR = 0u;
}

static int pll_start(uint32_t source_bits, uint32_t pll_m)
{
    /* The PLL must be off while PLLCFGR changes (RM0090 section 7.3.2). */
    RCC_CR &= ~RCC_CR_PLLON;
    if (!wait_reg(&RCC_CR, RCC_CR_PLLRDY, 0u, PLL_LOCK_US)) {
        return FOTA_E_TIMEOUT;
    }
    RCC_PLLCFGR = (pll_m << RCC_PLLCFGR_PLLM_SHIFT) | (PLL_N << RCC_PLLCFGR_PLLN_SHIFT) |
                  (PLL_P_DIV2 << RCC_PLLCFGR_PLLP_SHIFT) | source_bits | (PLL_Q << RCC_PLLCFGR_PLLQ_SHIFT);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_reg(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, PLL_LOCK_US)) {
        RCC_CR &= ~RCC_CR_PLLON;
        return FOTA_E_TIMEOUT;
    }
    /* Flash wait states before the clock goes up, and read back: the new latency must be in effect
     * before HCLK rises (RM0090 section 3.5.1, "Increasing the CPU frequency"). Prefetch only where
     * the silicon allows it (prefetch_allowed). */
    uint32_t acr = (FLASH_LATENCY_168MHZ << FLASH_ACR_LATENCY_SHIFT) | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if (prefetch_allowed()) {
        acr |= FLASH_ACR_PRFTEN;
    }
    FLASH_ACR = acr;
    if (!wait_reg(&FLASH_ACR, FLASH_ACR_LATENCY_MASK << FLASH_ACR_LATENCY_SHIFT,
                  FLASH_LATENCY_168MHZ << FLASH_ACR_LATENCY_SHIFT, SWITCH_US)) {
        return FOTA_E_TIMEOUT;
    }
    /* AHB /1, APB1 /4 (42 MHz, max 42), APB2 /2 (84 MHz, max 84) first, while SYSCLK is still the
     * HSI, then the switch to the PLL in a second write (RM0090 section 7.3.3: the prescalers
     * must never let PCLK1/PCLK2 exceed their maximum, not even for one store). */
    RCC_CFGR = (RCC_CFGR_PPRE_DIV4 << RCC_CFGR_PPRE1_SHIFT) | (RCC_CFGR_PPRE_DIV2 << RCC_CFGR_PPRE2_SHIFT);
    RCC_CFGR |= RCC_CFGR_SW_PLL << RCC_CFGR_SW_SHIFT;
    if (!wait_reg(&RCC_CFGR, RCC_CFGR_SWS_MASK << RCC_CFGR_SWS_SHIFT, RCC_CFGR_SW_PLL << RCC_CFGR_SWS_SHIFT,
                  SWITCH_US)) {
        to_hsi(); /* SYSCLK first, prescalers after: APB1 never above 42 MHz */
        return FOTA_E_TIMEOUT;
    }
    g_core_mhz = SYSCLK_PLL_HZ / 1000000u;
    return FOTA_OK;
}

/* Wait for HSERDY for HSE_STARTUP_US of time, running on the HSI (16 MHz). A bound counted in poll
 * iterations (wait_reg) lasts several times its nominal time, which without a crystal delays every
 * start; here short iteration-counted polls run until the DWT cycle counter (ARMv7-M ARM C1.8) has
 * counted the bound. */
static int hse_ready(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    const uint32_t start = DWT_CYCCNT;
    const uint32_t cycles = HSE_STARTUP_US * (HSI_HZ / 1000000u);
    do {
        if (wait_reg(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY, HSE_POLL_US)) {
            return 1;
        }
    } while (DWT_CYCCNT - start < cycles);
    return 0;
}

int clock_init(struct clock_info *ci)
{
    /* Start from the reset state: SYSCLK = HSI, prescalers /1. */
    RCC_CR |= RCC_CR_HSION;
    (void)wait_reg(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, SWITCH_US);
    /* The application finds the PLL running (set up by the bootloader): the PLL can only be turned
     * off once the switch to the HSI has happened (RM0090 section 7.3.1, PLLON). */
    to_hsi();
    g_core_mhz = HSI_HZ / 1000000u;

    ci->source = CLOCK_HSE_PLL;
    RCC_CR |= RCC_CR_HSEON;
    int rc = FOTA_E_TIMEOUT;
    if (hse_ready()) {
        rc = pll_start(RCC_PLLCFGR_PLLSRC_HSE, PLL_M_HSE);
    }
    if (rc != FOTA_OK) {
        /* HSE absent (or its PLL did not lock): HSI through the PLL keeps every derived rate. */
        RCC_CR &= ~RCC_CR_HSEON;
        ci->source = CLOCK_HSI_PLL;
        if (pll_start(0u, PLL_M_HSI) != FOTA_OK) {
            ci->source = CLOCK_HSI;
        }
    }
    if (ci->source == CLOCK_HSI) {
        g_core_mhz = HSI_HZ / 1000000u;
        ci->sysclk_hz = ci->pclk1_hz = ci->pclk2_hz = HSI_HZ;
        return FOTA_E_TIMEOUT;
    }
    ci->sysclk_hz = SYSCLK_PLL_HZ;
    ci->pclk1_hz = SYSCLK_PLL_HZ / 4u;
    ci->pclk2_hz = SYSCLK_PLL_HZ / 2u;
    return ci->source == CLOCK_HSE_PLL ? FOTA_OK : FOTA_E_TIMEOUT;
}

const char *clock_source_str(uint8_t source)
{
    switch (source) {
    case CLOCK_HSE_PLL:
        return "hse-pll";
    case CLOCK_HSI_PLL:
        return "hsi-pll";
    case CLOCK_HSI:
        return "hsi";
    default:
        return "?";
    }
}
