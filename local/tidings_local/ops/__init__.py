"""Operator tooling that works against any endpoint: AWS, or the local system via AWS_ENDPOINT_URL."""
