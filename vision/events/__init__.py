"""Events: debounce observations into incidents with a lifecycle."""
