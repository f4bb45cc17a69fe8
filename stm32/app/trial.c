#include "trial.h"
#include "agent.h"
#include "app.h"
#include "flash_area.h"
#include "fota_layout.h"
#include "journal.h"
#include "link.h"
#include "log.h"

static int on_trial;
static int confirmed;
static int gave_up;

__attribute__((weak)) int app_selftest_extra(void)
{
    return 1;
}

void trial_init(void)
{
    struct journal_state js;
    (void)journal_scan(fa_get(FOTA_REGION_METADATA_ID), &js);
    on_trial = js.have_record && js.latest.mr_state == FOTA_META_STATE_TRIAL &&
               js.latest.mr_active_slot == app_slot;
    if (on_trial) {
        log_begin();
        log_str("trial boot, ");
        log_u32(js.latest.mr_attempts_left);
        log_str(" attempts left, self-test running");
        log_end();
    }
}

/* The self-test passed: confirm through the update agent, which re-reads the journal (the truth,
 * not what was seen at start-up) and writes the CONFIRMED record. Returns 1 when done (confirmed
 * now, or no longer on trial, e.g. confirmed by the link's CONFIRM command), 0 on a journal error. */
static int confirm(void)
{
    enum agent_err err = agent_confirm(link_agent());
    if (err == AGENT_E_STATE) {
        on_trial = 0;
        return 1;
    }
    if (err != AGENT_OK) {
        log_error("confirm failed", (uint32_t)err);
        return 0;
    }
    confirmed = 1;
    on_trial = 0;
    log_begin();
    log_str("confirmed slot ");
    log_slot(app_slot);
    log_str(" ");
    log_version(app_header->ih_ver_major, app_header->ih_ver_minor, app_header->ih_ver_revision,
                app_header->ih_ver_build);
    log_end();
    return 1;
}

void trial_poll(uint32_t now_ms, int sensor_ok)
{
    if (!on_trial || gave_up) {
        return;
    }
    if (now_ms >= TRIAL_CONFIRM_AFTER_MS && sensor_ok && app_selftest_extra()) {
        if (confirm()) {
            return;
        }
    }
    if (now_ms >= TRIAL_DEADLINE_MS) {
        gave_up = 1;
        log_begin();
        log_str("self-test failed, waiting for the watchdog");
        log_end();
    }
}

int trial_watchdog_ok(void)
{
    return !gave_up;
}

int trial_pending(void)
{
    return on_trial && !confirmed;
}
