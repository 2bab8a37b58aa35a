"""Rules of the notifications service, without I/O."""
