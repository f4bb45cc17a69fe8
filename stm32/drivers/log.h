/* Log lines on USART2: "<prefix>: ...\r\n", where the prefix is "boot" or "app" (log_prefix,
 * defined by each program). The lines are a contract with the simulator tests: stm32/README.md. */
#ifndef FOTA_LOG_H
#define FOTA_LOG_H

#include <stddef.h>
#include <stdint.h>

extern const char log_prefix[];

void log_begin(void);            /* "<prefix>: " */
void log_str(const char *s);
void log_u32(uint32_t v);        /* decimal */
void log_i32(int32_t v);
void log_hex32(uint32_t v);      /* 0x%08X */
void log_hex(const uint8_t *bytes, size_t len); /* lower-case hex digits, no prefix */
void log_centi(int32_t centi);   /* 2512 -> "25.12", -50 -> "-0.50" */
void log_version(uint32_t major, uint32_t minor, uint32_t patch, uint32_t build); /* "v1.2.3+4" */
void log_slot(uint32_t slot);    /* "A", "B", "?" */
void log_end(void);              /* "\r\n" */
/* One whole line "<prefix>: <what> err <code>". */
void log_error(const char *what, uint32_t code);
/* When clock_init fell back (clock_rc != FOTA_OK): "warning: HSE did not start, running on <source>". */
void log_clock_fallback(int clock_rc, uint8_t source);

#endif /* FOTA_LOG_H */
