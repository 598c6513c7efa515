"""Package data for the tagger: the hand-made country table that pycountry lacks (demonyms, short forms)."""
