"""Helpers shared by the tests, importable from any test folder in any order (pytest puts tests/ on
sys.path through ``pythonpath`` in pyproject.toml): ``from fota_testkit.server import LiveServer``.

    bridge      the bridge scenarios' STM32: the fake or the twin behind one interface, wire faults
    corpus      corrupted images for the Python and the C image checks
    e2e         the lab flashed and deployed, releases re-stamped from one build
    elf         ELF files made to order for the ELF checker and the post-link step
    fake_stm32  a fake STM32 update agent on a virtual clock, with faults inside the device
    link        builds of three versions, a booted twin, the reference master on it
    markers     the markers of every test, from its folder, file and fixtures
    mpremote    mpremote driven against the virtual ESP32
    relay       a TCP relay that can stall or cut a connection
    s3          pytest fixtures: a moto S3 server, buckets and configs
    server      bucket listings, a live server on loopback (and fota_lab.images' builders)
    stm32twin   register values of the twin, and the product layout compared with the chip
    tls         test certificates (a CA, the server's, a wrong CA), TLS servers, moto over HTTPS

What the benchmarks need as well lives in fota_lab instead: fota_lab.images (fake-but-valid
images, restamp, builds, installed releases), fota_lab.fakes (the fake update server),
fota_lab.heap_probe, fota_lab.devices.boot_twin.
"""
