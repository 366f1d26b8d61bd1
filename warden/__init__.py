"""Warden's shared kit: the event contract, the Kafka/Postgres runtime and the CLI."""
