"""Peripheral models of the STM32F407 twin, one module per block (RM0090 chapter cited in each)."""
