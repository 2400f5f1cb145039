"""street-vision: street cameras to city tickets."""

__version__ = "0.1.0"
