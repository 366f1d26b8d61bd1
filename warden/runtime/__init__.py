"""The runtime every Warden service stands on: consumer loop, inbox, outbox, DLQ, health, metrics."""
