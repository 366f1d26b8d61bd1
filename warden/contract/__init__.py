"""The public event contract (DESIGN.md, "Event contract (v1)"): one source for models and topics."""
from warden.contract.events import EVENT_MODELS, model_for
from warden.contract.topics import TOPICS, Topic, topic

__all__ = ["EVENT_MODELS", "TOPICS", "Topic", "model_for", "topic"]
