"""The registration datastore: the Store port, its MongoDB adapter and an in-memory fake."""
