"""Scene geometry: zones in normalized coordinates and membership tests."""
