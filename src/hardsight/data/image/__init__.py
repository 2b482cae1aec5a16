"""Image data: labelled class folders or CSV (labels), the prepared split and its batches (prepare)."""
