"""stm32-fota host library: build, checks, releases, link master and shared format definitions."""

__version__ = "0.1.0"
