"""The registration service: organizations (verification lifecycle, members) and experts."""
