/* GPIO (RM0090 section 8.4). */
#include "gpio.h"
#include "stm32f407_regs.h"

void gpio_set_mode(uint32_t port, uint32_t pin, uint32_t mode)
{
    uint32_t moder = GPIO_MODER(port);
    moder &= ~(GPIO_MODE_MASK << (2u * pin));
    moder |= (mode & GPIO_MODE_MASK) << (2u * pin);
    GPIO_MODER(port) = moder;
}

void gpio_set_af(uint32_t port, uint32_t pin, uint32_t af)
{
    /* Select the function before the pin leaves input mode, so it never drives something else. */
    if (pin < 8u) {
        uint32_t r = GPIO_AFRL(port) & ~(GPIO_AF_MASK << (4u * pin));
        GPIO_AFRL(port) = r | ((af & GPIO_AF_MASK) << (4u * pin));
    } else {
        uint32_t r = GPIO_AFRH(port) & ~(GPIO_AF_MASK << (4u * (pin - 8u)));
        GPIO_AFRH(port) = r | ((af & GPIO_AF_MASK) << (4u * (pin - 8u)));
    }
    gpio_set_mode(port, pin, GPIO_MODE_AF);
}

void leds_init(void)
{
    rcc_enable(&RCC_AHB1ENR, RCC_AHB1ENR_GPIODEN);
    /* All four off first (BSRR upper half resets), then outputs (push-pull is the reset state). */
    GPIO_BSRR(GPIOD) = ((1u << LED_GREEN) | (1u << LED_ORANGE) | (1u << LED_RED) | (1u << LED_BLUE)) << 16;
    gpio_set_mode(GPIOD, LED_GREEN, GPIO_MODE_OUTPUT);
    gpio_set_mode(GPIOD, LED_ORANGE, GPIO_MODE_OUTPUT);
    gpio_set_mode(GPIOD, LED_RED, GPIO_MODE_OUTPUT);
    gpio_set_mode(GPIOD, LED_BLUE, GPIO_MODE_OUTPUT);
}

void led_set(enum led led, int on)
{
    /* BSRR: atomic set (bits 0-15) or reset (bits 16-31), no read-modify-write. */
    GPIO_BSRR(GPIOD) = on ? (1u << (uint32_t)led) : (1u << ((uint32_t)led + 16u));
}

void led_toggle(enum led led)
{
    led_set(led, (GPIO_ODR(GPIOD) & (1u << (uint32_t)led)) == 0u);
}
