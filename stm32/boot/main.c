/* Bootloader: pick a slot, validate it, jump (docs/image-format.md; stm32/README.md for the boot
 * table and the log lines). Runs at 0x08000000 after every reset. */
#include <string.h>
#include "boot_decide.h"
#include "clock.h"
#include "cpu.h"
#include "flash_stm32.h"
#include "fota_layout.h"
#include "gpio.h"
#include "image.h"
#include "iwdg.h"
#include "journal.h"
#include "log.h"
#include "reset_cause.h"
#include "stm32f407_regs.h"
#include "systick.h"
#include "uart.h"
#include "withdraw.h"

const char log_prefix[] = "boot";

#define RED_BLINK_HALF_PERIOD_MS 250u

static void log_slot_state(uint8_t slot, const struct image_summary *s)
{
    log_begin();
    log_str("slot ");
    log_slot(slot);
    if (s->state == FOTA_SLOT_STATE_VALID) {
        log_str(" valid ");
        log_version(s->ver.major, s->ver.minor, s->ver.patch, s->ver.build);
    } else if (s->state == FOTA_SLOT_STATE_EMPTY) {
        log_str(" empty");
    } else {
        log_str(" invalid ");
        log_str(image_fault_str(s->fault));
    }
    log_end();
}

static void log_journal(const struct journal_state *js)
{
    log_begin();
    if (!js->have_record) {
        log_str("journal empty");
    } else {
        const struct fota_meta_record *r = &js->latest;
        log_str("journal seq ");
        log_u32(r->mr_seq);
        log_str(" slot ");
        log_slot(r->mr_active_slot);
        log_str(r->mr_state == FOTA_META_STATE_TRIAL ? " trial " : " confirmed ");
        log_str("attempts ");
        log_u32(r->mr_attempts_left);
        log_str(" result ");
        log_u32(r->mr_last_result);
    }
    if (js->torn_records != 0u) {
        log_str(" torn ");
        log_u32(js->torn_records);
    }
    log_end();
}

/* Nothing bootable: say why once, then blink the red LED forever. Never jumps. */
static void __attribute__((noreturn)) stay(const struct image_summary slot[2])
{
    log_begin();
    log_str("no valid image (A ");
    log_str(image_fault_str(slot[FOTA_SLOT_A].fault));
    log_str(", B ");
    log_str(image_fault_str(slot[FOTA_SLOT_B].fault));
    log_str("), staying in bootloader");
    log_end();
    uint32_t last = millis();
    led_set(LED_RED, 1);
    for (;;) {
        cpu_wfi(); /* woken by SysTick every millisecond */
        if (millis() - last >= RED_BLINK_HALF_PERIOD_MS) {
            last += RED_BLINK_HALF_PERIOD_MS;
            led_toggle(LED_RED);
        }
    }
}

/* Hand the CPU to the image in slot: no interrupt may fire on the way, the application's vector
 * table and stack take over (PM0214 section 2.3.4: word 0 is the MSP, word 1 the entry). */
static void __attribute__((noreturn)) jump(uint8_t slot)
{
    const struct flash_area *fa = fa_slot(slot);
    const uint32_t *vectors = (const uint32_t *)(uintptr_t)fa->base;
    uint32_t sp = vectors[0];
    uint32_t entry = vectors[1];

    uart_handoff(); /* the application sends the lines still in the log ring */
    systick_stop();
    cpu_irq_disable();
    SCB_VTOR = fa->base;
    cpu_dsb();
    cpu_isb();
    /* PRIMASK stays set: the application enables interrupts once its own handlers are ready. */
    __asm__ volatile("msr msp, %0\n\t"
                     "bx %1\n\t" ::"r"(sp),
                     "r"(entry)
                     : "memory");
    __builtin_unreachable();
}

int main(void)
{
    struct clock_info ci;
    int clock_rc = clock_init(&ci);
    uint32_t reset_flags = reset_cause_take();
    uart_init(ci.pclk1_hz);
    leds_init();
    systick_init(ci.sysclk_hz);
    cpu_irq_enable();

    log_begin();
    log_str("start ");
    log_version(FW_VER_MAJOR, FW_VER_MINOR, FW_VER_PATCH, FW_BUILD);
    log_str(" reset ");
    log_str(reset_cause_str(reset_flags));
    log_str(" clock ");
    log_str(clock_source_str(ci.source));
    log_str(" ");
    log_u32(ci.sysclk_hz / 1000000u);
    log_str(" MHz");
    log_end();
    log_clock_fallback(clock_rc, ci.source);

    fa_init(&flash_stm32_port);
    struct boot_input in;
    memset(&in, 0, sizeof(in));
    for (uint8_t s = FOTA_SLOT_A; s <= FOTA_SLOT_B; s++) {
        (void)image_validate(s, &in.slot[s]);
        log_slot_state(s, &in.slot[s]);
    }
    const struct flash_area *meta = fa_get(FOTA_REGION_METADATA_ID);
    struct journal_state js;
    int rc = journal_scan(meta, &js);
    if (rc != FOTA_OK && rc != FOTA_E_NOT_FOUND) {
        log_error("journal read failed", (uint32_t)rc);
    }
    log_journal(&js);
    in.have_record = js.have_record;
    in.rec = js.latest;
    in.watchdog_reset = (reset_flags & RCC_CSR_IWDGRSTF) != 0u;

    struct boot_decision d;
    boot_decide(&in, &d);
    if (d.append) {
        rc = journal_append(meta, &js, &d.record, withdraw_unwanted_image);
        if (rc != FOTA_OK) {
            log_error("journal append failed", (uint32_t)rc);
            /* An attempt that cannot be counted could repeat forever: the other valid slot, and
             * with a full journal a revert (a CONFIRMED record, which may compact). */
            boot_decide_trial_unrecorded(&in, rc, &d);
            if (d.append) {
                rc = journal_append(meta, &js, &d.record, withdraw_unwanted_image);
                if (rc != FOTA_OK) {
                    log_error("journal append failed", (uint32_t)rc);
                }
            }
        } else if (d.reason == BOOT_R_NO_RECORD) {
            /* First boot: from now on the journal, not the versions, says what runs, so an image
             * written later cannot start without a trial (reset before ACTIVATE, torn record). */
            log_begin();
            log_str("first boot: journal seq ");
            log_u32(d.record.mr_seq);
            log_str(" slot ");
            log_slot((uint32_t)d.boot_slot);
            log_str(" confirmed");
            log_end();
        }
    }
    if (d.boot_slot < 0) {
        stay(in.slot);
    }

    const struct image_summary *img = &in.slot[d.boot_slot];
    log_begin();
    log_str("jump slot ");
    log_slot((uint32_t)d.boot_slot);
    log_str(" ");
    log_version(img->ver.major, img->ver.minor, img->ver.patch, img->ver.build);
    log_str(" (");
    log_str(boot_reason_str(d.reason));
    if (d.reason == BOOT_R_TRIAL) {
        log_str(", ");
        log_u32(d.record.mr_attempts_left);
        log_str(" left");
    }
    log_str(")");
    log_end();
    if (d.start_watchdog) {
        rc = iwdg_start();
        if (rc != FOTA_OK) {
            log_error("watchdog start failed", (uint32_t)rc);
        }
    }
    jump((uint8_t)d.boot_slot);
}
