"""Identity resolution: finding customers recorded twice, merging them, and undoing merges."""
