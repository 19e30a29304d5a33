"""Report: tables, figures and the report documents (Markdown, HTML, LaTeX) built from a run's statistics."""
