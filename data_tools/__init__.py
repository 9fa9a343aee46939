"""Data tools: readers, quality control, shard writing and the synthetic cohort."""
