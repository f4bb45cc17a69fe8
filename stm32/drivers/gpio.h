/* GPIO pin set-up and the Discovery board's four LEDs (PD12 green, PD13 orange, PD14 red,
 * PD15 blue; UM1472 section 6.3). */
#ifndef FOTA_GPIO_H
#define FOTA_GPIO_H

#include <stdint.h>

void gpio_set_mode(uint32_t port, uint32_t pin, uint32_t mode);
void gpio_set_af(uint32_t port, uint32_t pin, uint32_t af);

enum led {
    LED_GREEN = 12,
    LED_ORANGE = 13,
    LED_RED = 14,
    LED_BLUE = 15,
};

void leds_init(void);
void led_set(enum led led, int on);
void led_toggle(enum led led);

#endif /* FOTA_GPIO_H */
