"""dealwatch domain records and config schemas (imports nothing of ours)."""
