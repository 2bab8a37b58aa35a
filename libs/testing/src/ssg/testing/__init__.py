"""Test support for South-South Galaxy: real local servers as pytest fixtures (``ssg.testing``)."""
