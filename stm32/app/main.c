/* The application, one source for both slots (the slot from app_slot, the version from the image header):
 * blinks its slot's LED (A green PD12, B orange PD13) 500 ms on / 500 ms off, logs the die
 * temperature once a second, confirms itself on a trial boot, refreshes the watchdog, and gives
 * the update agent (link_init / link_poll) a place in the main loop. */
#include "adc_temp.h"
#include "app.h"
#include "clock.h"
#include "flash_area.h"
#include "flash_stm32.h"
#include "gpio.h"
#include "iwdg.h"
#include "log.h"
#include "sched.h"
#include "stm32f407_regs.h"
#include "systick.h"
#include "trial.h"
#include "uart.h"

const char log_prefix[] = "app";

#define BLINK_HALF_PERIOD_MS 500u
#define TEMP_PERIOD_MS 1000u
#define TRIAL_PERIOD_MS 100u

static enum led slot_led;
static volatile int stay_awake;
static int32_t temp_centi;
static int temp_valid;
static int temp_last_ok;

__attribute__((weak)) void link_init(void)
{
}

__attribute__((weak)) void link_poll(void)
{
}

__attribute__((weak)) int link_pending(void)
{
    return 0;
}

void app_stay_awake(void)
{
    stay_awake = 1;
}

int app_temperature(int32_t *centi_c)
{
    *centi_c = temp_valid ? temp_centi : 0;
    return temp_valid;
}

static void log_identity(void)
{
    log_str("slot ");
    log_slot(app_slot);
    log_str(" ");
    log_version(app_header->ih_ver_major, app_header->ih_ver_minor, app_header->ih_ver_revision,
                app_header->ih_ver_build);
}

static void task_blink(uint32_t now_ms)
{
    (void)now_ms;
    led_toggle(slot_led);
}

static void task_temperature(uint32_t now_ms)
{
    (void)now_ms;
    int32_t centi;
    uint32_t raw;
    int rc = adc_temp_read(&centi, &raw);
    temp_last_ok = rc == FOTA_OK;
    log_begin();
    log_identity();
    if (temp_last_ok) {
        temp_centi = centi;
        temp_valid = 1;
        log_str(" temp ");
        log_centi(centi);
        log_str(" C");
    } else {
        log_str(" temp error ");
        log_u32((uint32_t)rc);
    }
    log_end();
}

static void task_trial(uint32_t now_ms)
{
    trial_poll(now_ms, temp_last_ok);
}

int main(void)
{
    struct clock_info ci;
    int clock_rc = clock_init(&ci);
    uart_init(ci.pclk1_hz);
    leds_init();
    systick_init(ci.sysclk_hz);
    adc_temp_init();
    cpu_irq_enable(); /* the bootloader jumps here with PRIMASK set */

    slot_led = app_slot == FOTA_SLOT_A ? LED_GREEN : LED_ORANGE;
    log_begin();
    log_str("start ");
    log_identity();
    log_str(" clock ");
    log_str(clock_source_str(ci.source));
    log_end();
    log_clock_fallback(clock_rc, ci.source);

    fa_init(&flash_stm32_port);
    trial_init();
    link_init();

    uint32_t now = millis();
    led_set(slot_led, 1);
    (void)sched_add(task_blink, BLINK_HALF_PERIOD_MS, now + BLINK_HALF_PERIOD_MS);
    (void)sched_add(task_temperature, TEMP_PERIOD_MS, now + TEMP_PERIOD_MS);
    (void)sched_add(task_trial, TRIAL_PERIOD_MS, now + TRIAL_PERIOD_MS);

    for (;;) {
        sched_run(millis());
        link_poll();
        if (trial_watchdog_ok()) {
            iwdg_refresh(); /* harmless when the watchdog was never started */
        }
        /* Check for work and sleep with PRIMASK set: a frame that the NSS interrupt handed over
         * before cpsid is seen by link_pending(), one that comes later leaves its interrupt
         * pending, and WFI with PRIMASK set still wakes on a pending interrupt, which then runs
         * right after cpsie (PM0214 section 2.5.3). No wake-up waits for the next tick. */
        cpu_irq_disable();
        if (!stay_awake && !link_pending()) {
            cpu_wfi();
        }
        stay_awake = 0;
        cpu_irq_enable();
    }
}
