"""Where bytes come from: ESE tables, raw blobs, legacy state files (one module each)."""
