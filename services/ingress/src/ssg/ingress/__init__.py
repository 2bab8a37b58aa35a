"""AMQP ingress bridge: internal systems publish records over RabbitMQ; validated onto Kafka."""
