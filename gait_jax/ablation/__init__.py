"""Body-region ablation: which region of the body carries each phenotype's signal."""
