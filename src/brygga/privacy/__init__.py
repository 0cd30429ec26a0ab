"""Privacy: disclosure control, noise and budgets, pseudonyms and anonymized extracts."""
