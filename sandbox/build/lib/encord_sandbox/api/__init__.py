"""The wire layer: one router per API area, translating SDK requests into store calls."""
