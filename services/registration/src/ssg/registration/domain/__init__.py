"""Registration rules as plain Python: entities, validation, lifecycle, duplicates, authorization.

Nothing here does I/O; every rule is a function a unit test can call directly.
"""
