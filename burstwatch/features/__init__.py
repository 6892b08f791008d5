"""Features: burst-shape descriptions of flows and windows, as a float matrix + schema."""

from burstwatch.features.extract import FeatureMatrix, compute_features
from burstwatch.features.registry import FEATURE_INDEX, FEATURE_NAMES, FEATURES, Feature

__all__ = ["FEATURES", "FEATURE_INDEX", "FEATURE_NAMES", "Feature", "FeatureMatrix", "compute_features"]
