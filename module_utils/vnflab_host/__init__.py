"""vnflab measuring core: packets, kernel timestamps and probes (Python standard library only)."""
