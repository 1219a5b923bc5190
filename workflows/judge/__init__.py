"""The judge: reading datasets' layouts, deciding answers and programs, and the metrics."""
