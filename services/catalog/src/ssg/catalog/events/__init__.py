"""Events the catalog publishes and consumes."""
