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
#include "keyring.h"
#include "log.h"
#include "option_bytes.h"
#include "reset_cause.h"
#include "stm32f407_regs.h"
#include "systick.h"
#include "uart.h"
#include "withdraw.h"

const char log_prefix[] = "boot";

#define RED_BLINK_HALF_PERIOD_MS 250u

static void log_slot_state(uint8_t slot, const struct image_summary *s, int by_crc)
{
    log_begin();
    log_str("slot ");
    log_slot(slot);
    if (s->state == FOTA_SLOT_STATE_VALID) {
        log_str(" valid ");
        log_version(s->ver.major, s->ver.minor, s->ver.patch, s->ver.build);
        log_str(" counter ");
        log_u32(s->security_counter);
        log_str(" key ");
        log_hex(s->key_id, sizeof(s->key_id));
        if (by_crc) {
            log_str(" (crc)");
        }
    } else if (s->fault == IMAGE_NOT_CHECKED) {
        log_str(" not checked ");
        log_version(s->ver.major, s->ver.minor, s->ver.patch, s->ver.build);
    } else if (s->state == FOTA_SLOT_STATE_EMPTY) {
        log_str(" empty");
    } else {
        log_str(" invalid ");
        log_str(image_fault_str(s->fault));
        if (s->fault == IMAGE_ROLLBACK) {
            log_str(" ");
            log_version(s->ver.major, s->ver.minor, s->ver.patch, s->ver.build);
            log_str(" counter ");
            log_u32(s->security_counter);
        }
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
        log_str(" floor ");
        log_u32(r->mr_security_counter);
    }
    if (js->torn_records != 0u) {
        log_str(" torn ");
        log_u32(js->torn_records);
    }
    log_end();
}

/* Validate both slots into in->slot; returns 1 when it took the short way. "Validate once"
 * (MCUboot's term): the image of a CONFIRMED record passed a full validation (SHA-256) when that
 * record was written, which took the CRC of its image and trailer (mr_image_crc). When the slot's
 * CRC still matches, the slot is valid without its SHA-256, and the other slot only gets the
 * cheap checks: boot_decide boots a confirmed valid active slot whatever the other holds. Any
 * mismatch (flash damage, a record without a CRC) falls back to the full validation of both. The
 * CRC unit reads the slot at about flash speed: 256 KB in about 1.6 ms at 168 MHz. */
static int validate_slots(const struct journal_state *js, struct boot_input *in)
{
    const struct fota_meta_record *r = &js->latest;
    in->have_record = js->have_record;
    in->rec = js->latest;
    if (js->have_record && r->mr_state == FOTA_META_STATE_CONFIRMED && r->mr_active_slot <= FOTA_SLOT_B &&
        r->mr_image_crc != 0u) {
        uint8_t active = r->mr_active_slot;
        if (image_validate_crc(active, r->mr_image_crc, &in->slot[active]) == FOTA_OK &&
            in->slot[active].security_counter >= boot_floor(in)) {
            (void)image_inspect((uint8_t)(active ^ 1u), &in->slot[active ^ 1u]);
            return 1;
        }
    }
    for (uint8_t s = FOTA_SLOT_A; s <= FOTA_SLOT_B; s++) {
        (void)image_validate(s, &in->slot[s]);
    }
    boot_enforce_floor(in); /* anti-rollback: an image below the journal's floor never boots */
    return 0;
}

/* A CONFIRMED record about to be appended gets the CRC of its (just fully validated) image. */
static void stamp_crc(const struct boot_input *in, struct boot_decision *d)
{
    if (d->append && d->record.mr_state == FOTA_META_STATE_CONFIRMED && d->boot_slot >= 0 &&
        d->record.mr_active_slot == (uint8_t)d->boot_slot &&
        in->slot[d->boot_slot].state == FOTA_SLOT_STATE_VALID &&
        image_crc((uint8_t)d->boot_slot, in->slot[d->boot_slot].image_size, &d->record.mr_image_crc) != FOTA_OK) {
        d->record.mr_image_crc = 0u;
    }
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
    /* The vector table follows the image header (IMAGE_HDR_SIZE, 512-byte aligned for VTOR). */
    const uint32_t vtor = fa->base + FOTA_IMAGE_HDR_SIZE;
    const uint32_t *vectors = (const uint32_t *)(uintptr_t)vtor;
    uint32_t sp = vectors[0];
    uint32_t entry = vectors[1];

    uart_handoff(); /* the application sends the lines still in the log ring */
    systick_stop();
    cpu_irq_disable();
    SCB_VTOR = vtor;
    cpu_dsb();
    cpu_isb();
    /* PRIMASK stays set: the application enables interrupts once its own handlers are ready.
     * CONTROL to its reset value first (PM0214 section 2.1.3): the SHA-256 above used FP registers,
     * so FPCA is set, and the application would start with an active FP context (every exception
     * pushing the 26-word frame, PM0214 section 2.3.7); ISB before the new stack is used, as
     * MCUboot's do_boot does. */
    __asm__ volatile("msr control, %2\n\t"
                     "isb 0xF\n\t"
                     "msr msp, %0\n\t"
                     "bx %1\n\t" ::"r"(sp),
                     "r"(entry), "r"(0u)
                     : "memory");
    __builtin_unreachable();
}

int main(void)
{
    /* A hardware watchdog (option_bytes.c) would fire within a first-boot compaction's erase, or
     * during the wait for an absent HSE: give it the application's period first thing; the erases
     * refresh it as they start. */
    uint32_t optcr = FLASH_OPTCR;
    int wdg_rc = option_bytes_hw_watchdog(optcr) ? iwdg_start() : FOTA_OK;
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
    option_bytes_log(optcr);
    if (wdg_rc != FOTA_OK) {
        log_error("watchdog start failed", (uint32_t)wdg_rc);
    }

    fa_init(&flash_stm32_port);
    image_set_keyring(&fota_keyring);
    struct boot_input in;
    memset(&in, 0, sizeof(in));
    const struct flash_area *meta = fa_get(FOTA_REGION_METADATA_ID);
    struct journal_state js;
    int rc = journal_scan(meta, &js);
    int by_crc = validate_slots(&js, &in);
    for (uint8_t s = FOTA_SLOT_A; s <= FOTA_SLOT_B; s++) {
        log_slot_state(s, &in.slot[s], by_crc);
    }
    if (rc != FOTA_OK && rc != FOTA_E_NOT_FOUND) {
        log_error("journal read failed", (uint32_t)rc);
    }
    log_journal(&js);
    in.watchdog_reset = (reset_flags & RCC_CSR_IWDGRSTF) != 0u;

    struct boot_decision d;
    boot_decide(&in, &d);
    stamp_crc(&in, &d);
    if (d.append) {
        rc = journal_append(meta, &js, &d.record, withdraw_unwanted_image);
        if (rc != FOTA_OK) {
            log_error("journal append failed", (uint32_t)rc);
            /* An attempt that cannot be counted could repeat forever: the other valid slot, and
             * with a full journal a revert (a CONFIRMED record, which may compact). */
            boot_decide_trial_unrecorded(&in, rc, &d);
            stamp_crc(&in, &d);
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
