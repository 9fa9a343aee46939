"""Clip records, shards and the Grain input pipeline."""
