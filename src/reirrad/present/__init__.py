"""Presentation: text, JSON, CSV, Markdown, the HTML/PDF report and figures."""
