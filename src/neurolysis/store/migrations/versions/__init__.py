"""The schema revisions, oldest first: 0001 (cases with their report), 0002 (reports, tags, notes, parent), 0003 (web jobs)."""
