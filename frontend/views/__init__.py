"""Console pages, one module per section; each module lists its own `urlpatterns`."""
