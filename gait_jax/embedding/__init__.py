"""Frozen-encoder embeddings: clip → region-pooled vector → one row per person × task."""
