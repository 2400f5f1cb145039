"""The operator service: REST API, live status and the zone editor page (``street-vision serve``)."""
