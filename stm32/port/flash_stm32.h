/* The STM32F407 flash register driver as a flash_port (flash_area.h). */
#ifndef FOTA_FLASH_STM32_H
#define FOTA_FLASH_STM32_H

#include "flash_area.h"

extern const struct flash_port flash_stm32_port;

#endif /* FOTA_FLASH_STM32_H */
