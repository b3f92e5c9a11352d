"""Adapters at the edge: case files (YAML), DICOM RT, packaged data files."""
