"""stm32-fota update server: syncs releases from S3 and tells each ESP32 bridge what to send."""

__version__ = "0.1.0"
