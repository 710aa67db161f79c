"""The version, on the ground floor: it enters every record's config (and hash)."""
__version__ = "0.1.0"
