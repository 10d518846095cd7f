"""See ARCHITECTURE.md: this package is planned in its own issue and holds nothing yet."""
