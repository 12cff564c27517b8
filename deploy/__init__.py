"""Production deployment: the edge proxy configuration, the build-context check and the
production smoke that CI runs."""
