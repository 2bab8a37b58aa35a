"""The bridge's rules, without I/O: external types, producers' rights, admission of a message."""
