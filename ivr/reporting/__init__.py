"""Figures, rollups, QA and exports for staff pages and partners (new modules; older ones stay
in ivr/): labels, NENA EIDO."""
