"""What every resumable job shares: files that appear only complete, manifests, and one set of settings per folder."""
