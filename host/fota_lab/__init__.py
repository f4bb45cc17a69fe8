"""The whole product on one machine: twins, local S3, server and bridge wired together for the demo,
the end-to-end tests and the benchmarks."""
