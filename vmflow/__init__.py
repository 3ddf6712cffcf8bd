"""The core every other package imports: settings, database, models, contracts, the
state table, names, the CLI and the embedded stack."""
