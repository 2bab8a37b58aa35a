"""The catalog datastore."""
