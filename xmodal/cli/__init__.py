"""Command-line interface: a thin layer over :class:`xmodal.Collection`."""
