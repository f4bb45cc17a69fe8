/* LIB_RAMFUNC: code of lib/ that runs while the flash programs (flash_area.h, fa_idle). On the chip
 * it lives in SRAM like the port's RAMFUNC (port/cpu.h): the F407 has a single flash bank and any
 * fetch from it stalls the CPU during a program or erase (RM0090 section 3.5). Such code may call
 * only other LIB_RAMFUNCs and static inline functions, and read no constant that the compiler puts
 * in flash. Nothing on the host. */
#ifndef FOTA_LIB_RAMFUNC_H
#define FOTA_LIB_RAMFUNC_H

#if defined(__arm__)
#define LIB_RAMFUNC __attribute__((section(".ramfunc"), noinline, long_call))
/* A constant table such code reads: in .data (copied to SRAM at start-up), not in flash. */
#define LIB_RAMDATA __attribute__((section(".data.lib_ramdata")))
#else
#define LIB_RAMFUNC
#define LIB_RAMDATA
#endif

#endif /* FOTA_LIB_RAMFUNC_H */
