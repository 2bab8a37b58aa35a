"""The RabbitMQ side: topology, the consuming entrypoint, the dead-letter publisher."""
