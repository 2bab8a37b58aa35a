"""Public reference facts shared by every service: SDGs and their targets, countries, instances."""
