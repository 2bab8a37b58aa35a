"""Search service: one faceted search over everything published, fed by events."""
