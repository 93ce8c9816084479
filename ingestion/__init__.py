"""Data in: EPA fuel economy, EPA test cars and NHTSA recalls, into vehicle documents with embeddings."""
