"""Input sources: each gives a Schema (raw layout + features), and optionally an Enricher."""

SOURCES = ("criteo", "movielens", "csv", "synthetic")
