"""Results: what is read back from the runs root and shown (study figures; tables and the report join later)."""
