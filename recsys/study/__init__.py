"""The reproducibility study: K replicas per activation variant, PD between them beside accuracy."""
