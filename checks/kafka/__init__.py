"""Kafka: the bootstrap addresses, the protocol, SASL, metadata, listeners and a scratch topic."""
