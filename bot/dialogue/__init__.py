"""The dialogue engine: state, slot filling, confirmation, routing."""
