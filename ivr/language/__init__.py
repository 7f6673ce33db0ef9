"""How words are read, in English and Spanish: folding, stems, phrase patterns (pure)."""
