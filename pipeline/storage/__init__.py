"""Storage: one SQLite database (sqlite-utils), its migrations, and the repositories over it."""
