#include "trial.h"
#include "app.h"
#include "flash_area.h"
#include "fota_layout.h"
#include "journal.h"
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
               js.latest.mr_active_slot == app_image_info.ii_slot;
    if (on_trial) {
        log_begin();
        log_str("trial boot, ");
        log_u32(js.latest.mr_attempts_left);
        log_str(" attempts left, self-test running");
        log_end();
    }
}

int app_confirm(void)
{
    const struct flash_area *meta = fa_get(FOTA_REGION_METADATA_ID);
    struct journal_state js;
    /* Re-read: the journal is the truth, not what was seen at start-up. */
    (void)journal_scan(meta, &js);
    if (!js.have_record || js.latest.mr_state != FOTA_META_STATE_TRIAL ||
        js.latest.mr_active_slot != app_image_info.ii_slot) {
        on_trial = 0;
        return FOTA_OK;
    }
    struct fota_meta_record rec = {0};
    rec.mr_active_slot = app_image_info.ii_slot;
    rec.mr_state = FOTA_META_STATE_CONFIRMED;
    rec.mr_attempts_left = 0;
    rec.mr_last_result = FOTA_RESULT_CONFIRMED;
    rec.mr_prev_slot = app_image_info.ii_slot;
    rec.mr_ver_major = app_image_info.ii_ver_major;
    rec.mr_ver_minor = app_image_info.ii_ver_minor;
    rec.mr_ver_patch = app_image_info.ii_ver_patch;
    rec.mr_build = app_image_info.ii_build;
    int rc = journal_append(meta, &js, &rec);
    log_begin();
    if (rc == FOTA_OK) {
        confirmed = 1;
        on_trial = 0;
        log_str("confirmed slot ");
        log_slot(app_image_info.ii_slot);
        log_str(" ");
        log_version(rec.mr_ver_major, rec.mr_ver_minor, rec.mr_ver_patch, rec.mr_build);
    } else {
        log_str("confirm failed err ");
        log_u32((uint32_t)rc);
    }
    log_end();
    return rc;
}

void trial_poll(uint32_t now_ms, int sensor_ok)
{
    if (!on_trial || gave_up) {
        return;
    }
    if (now_ms >= TRIAL_CONFIRM_AFTER_MS && sensor_ok && app_selftest_extra()) {
        if (app_confirm() == FOTA_OK) {
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
