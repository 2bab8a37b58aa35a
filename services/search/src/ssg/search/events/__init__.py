"""Event consumers (the indexer) and the activity publisher."""
