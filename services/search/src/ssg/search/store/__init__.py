"""The OpenSearch side: index definitions, bulk writes, queries."""
