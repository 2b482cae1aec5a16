"""Text data: labels from file names or CSV (labels), the prepared split (prepare), batches (datamodule)."""
