/* Small formatted output without printf (no libc). */
#include "log.h"
#include "clock.h"
#include "fota_err.h"
#include "uart.h"

void log_begin(void)
{
    uart_puts(log_prefix);
    uart_puts(": ");
}

void log_str(const char *s)
{
    uart_puts(s);
}

void log_u32(uint32_t v)
{
    char buf[11];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (i > 0) {
        uart_putc(buf[--i]);
    }
}

void log_i32(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        log_u32(0u - (uint32_t)v);
    } else {
        log_u32((uint32_t)v);
    }
}

void log_hex32(uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    uart_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        uart_putc(digits[(v >> shift) & 0xFu]);
    }
}

void log_hex(const uint8_t *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        uart_putc(digits[bytes[i] >> 4]);
        uart_putc(digits[bytes[i] & 0xFu]);
    }
}

void log_centi(int32_t centi)
{
    uint32_t mag = centi < 0 ? 0u - (uint32_t)centi : (uint32_t)centi;
    if (centi < 0) {
        uart_putc('-');
    }
    log_u32(mag / 100u);
    uart_putc('.');
    uart_putc((char)('0' + (mag % 100u) / 10u));
    uart_putc((char)('0' + mag % 10u));
}

void log_version(uint32_t major, uint32_t minor, uint32_t patch, uint32_t build)
{
    uart_putc('v');
    log_u32(major);
    uart_putc('.');
    log_u32(minor);
    uart_putc('.');
    log_u32(patch);
    uart_putc('+');
    log_u32(build);
}

void log_slot(uint32_t slot)
{
    uart_putc(slot == 0u ? 'A' : slot == 1u ? 'B' : '?');
}

void log_end(void)
{
    uart_puts("\r\n");
}

/* Called by Default_Handler (startup.c) before it resets the chip. */
void fault_report(uint32_t exception_number);
void fault_report(uint32_t exception_number)
{
    log_begin();
    log_str("fault exception ");
    log_u32(exception_number);
    log_str(", resetting");
    log_end();
    uart_flush();
}

void log_error(const char *what, uint32_t code)
{
    log_begin();
    log_str(what);
    log_str(" err ");
    log_u32(code);
    log_end();
}

void log_clock_fallback(int clock_rc, uint8_t source)
{
    if (clock_rc == FOTA_OK) {
        return;
    }
    log_begin();
    log_str("warning: HSE did not start, running on ");
    log_str(clock_source_str(source));
    log_end();
}
