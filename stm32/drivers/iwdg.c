/* IWDG (RM0090 section 19.4). LSI is 32 kHz nominal (17-47 kHz, DS8626 table 40): with /64 a
 * count is 2 ms nominal, so RLR = 2000 gives 4 s (2.7 s .. 7.5 s over the LSI tolerance). */
#include "iwdg.h"
#include "fota_err.h"
#include "stm32f407_regs.h"
#include "wait.h"

#define IWDG_PR_DIV64 4u
#define IWDG_MS_PER_COUNT 2u
/* PVU/RVU clear within 5 LSI cycles after a write (RM0090 section 19.4.4): 1 ms is ample. */
#define IWDG_UPDATE_US 1000u

int iwdg_start(void)
{
    /* A debugger halting the core stops the watchdog too (RM0090 section 38.16.4), so a halt during
     * a trial boot does not reset it. No effect without a debugger. */
    DBGMCU_APB1_FZ |= DBGMCU_APB1_FZ_IWDG_STOP;
    IWDG_KR = IWDG_KR_START; /* also starts the LSI */
    IWDG_KR = IWDG_KR_UNLOCK;
    IWDG_PR = IWDG_PR_DIV64;
    IWDG_RLR = IWDG_TIMEOUT_MS / IWDG_MS_PER_COUNT;
    int ok = wait_reg(&IWDG_SR, IWDG_SR_PVU | IWDG_SR_RVU, 0u, IWDG_UPDATE_US);
    IWDG_KR = IWDG_KR_RELOAD;
    return ok ? FOTA_OK : FOTA_E_TIMEOUT;
}

void iwdg_refresh(void)
{
    IWDG_KR = IWDG_KR_RELOAD;
}
