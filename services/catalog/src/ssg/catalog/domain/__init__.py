"""Rules of the catalog, no I/O."""
