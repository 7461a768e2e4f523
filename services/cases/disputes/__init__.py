"""Disputes of counted events (异议): filed by the unit's side, decided by the bureau above,
reviewed once on request, every step kept and published."""
