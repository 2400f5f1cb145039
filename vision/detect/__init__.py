"""Detection: model cards, inference backends and decoders per model family."""
