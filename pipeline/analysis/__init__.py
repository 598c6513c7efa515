"""Analysis: the spaCy chain that tags entities and detects and ranks deal candidates in a text."""
