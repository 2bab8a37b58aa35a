"""Search rules without I/O: documents from events, queries from requests, ranking."""
