"""The ranking model and its pieces (feature transforms, fused embeddings, interactions)."""

from recsys.models.ranking import RankingModel, embedding_dims

__all__ = ["RankingModel", "embedding_dims"]
