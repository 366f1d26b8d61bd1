"""The content classifier: illegal goods and services and scams in public titles and descriptions.

    from moderation.classifier import Classifier
    classifier = Classifier.load()          # once per process
    classifier.score(title, text)           # Score(score, label, version, top_features, delist)
"""
from moderation.classifier.model import CLASSES, Classifier, ModelError, Score

__all__ = ["CLASSES", "Classifier", "ModelError", "Score"]
