"""Video ingest: one reader thread per camera (PyAV), stream clock, health and reconnection."""
