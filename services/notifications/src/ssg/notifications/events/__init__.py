"""Event consumers, the delivery-task dispatcher and the results consumer."""
