"""Helpers shared by the tests, importable from any test folder in any order (pytest puts tests/ on
sys.path through ``pythonpath`` in pyproject.toml): ``from fota_testkit.server import LiveServer``.

    corpus     corrupted images for the Python and the C image checks
    elf        ELF files made to order for the ELF checker and the post-link step
    e2e        the lab flashed and deployed, releases re-stamped from one build
    link       builds of three versions, a booted twin, the reference master on it
    stm32twin  register values of the twin, and the product layout compared with the chip
    markers    the markers of every test, from its folder, file and fixtures
    mpremote   mpremote driven against the virtual ESP32
    relay      a TCP relay that can stall or cut a connection
    s3         pytest fixtures: a moto S3 server, buckets and configs
    server     fake-but-valid images, installed releases, a live server on loopback
    tls        test certificates (a CA, the server's, a wrong CA), TLS servers, moto over HTTPS
"""
