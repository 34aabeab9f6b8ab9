"""Media decoding: detect what a file is from its bytes and decode it within safety limits."""
