UNKNOWN = "unknown"
