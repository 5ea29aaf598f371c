"""Shipped scoring data (genre reference statistics); a package so that installs carry the JSON."""
