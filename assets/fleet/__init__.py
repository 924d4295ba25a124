"""Many accounts in one deployment: account x day partitions over the same core as the single-account assets."""
