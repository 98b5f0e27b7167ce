"""Detector plug-ins: pixels in, fake scores out."""
