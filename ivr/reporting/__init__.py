"""Figures, rollups, QA and exports for staff pages (new modules; older ones stay in ivr/)."""
