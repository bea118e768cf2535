"""The model: the snapshot's facts and their I/O, role keys, typed data, field paths. It depends on
nothing else in auditor but the error family (errors.py)."""
