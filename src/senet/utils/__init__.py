"""Small shared utilities (tables, atomic files, seeding)."""
