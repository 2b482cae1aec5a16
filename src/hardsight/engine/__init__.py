"""The pipeline's stages: trainer, evaluator, predictor, runtimes, exporter, tuner, and what they share."""
