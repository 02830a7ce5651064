"""Figures, GIFs, embeddings and the HTML report. Viz reads; it never trains."""
