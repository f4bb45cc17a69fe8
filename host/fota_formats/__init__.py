"""The project's formats and nothing else: the flash layout, image format and link protocol specs
(``spec/*.toml``), versions, the release layout, the journal record, the config file and the error
base. Everything else of the project reads these; this package imports no other of its packages."""
