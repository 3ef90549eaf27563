"""Load generator and side-by-side benchmark (see bench/README.md)."""
