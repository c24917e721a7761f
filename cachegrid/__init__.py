"""CacheGrid: an in-memory key/value cache server with an HTTP/JSON API."""

__version__ = "0.1.0"
