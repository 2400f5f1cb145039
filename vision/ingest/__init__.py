"""Video ingest: PyAV sources and the sampler that picks frames at each camera's detect fps."""
